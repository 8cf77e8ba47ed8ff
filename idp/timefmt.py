"""Dates and times as a person in France reads them (Europe/Paris, French words)."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
_DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre")


def to_paris(dt: datetime) -> datetime:
    """A naive UTC datetime (as stored) in Paris local time."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(PARIS)


def paris(dt: datetime | None) -> str:
    """``le mardi 24 novembre 2026 à 11 h 05``."""
    if dt is None:
        return ""
    local = to_paris(dt)
    return (f"le {_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year} "
            f"à {local.hour} h {local.minute:02d}")


def paris_time(dt: datetime | None) -> str:
    """``11 h 05``."""
    if dt is None:
        return ""
    local = to_paris(dt)
    return f"{local.hour} h {local.minute:02d}"


def init_app(app) -> None:
    app.add_template_filter(paris, "paris")
    app.add_template_filter(paris_time, "paris_time")
