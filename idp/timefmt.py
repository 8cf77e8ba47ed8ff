"""Dates, times and durations as a person in France reads them, from Babel (CLDR data for ``fr_FR``).

The words (days, months, « 1 minute » / « 15 minutes », « 6 mois ») come from the
Unicode CLDR through Babel rather than from tables kept here, so that every value
of a setting reads correctly. The public names (``to_paris``, ``paris``,
``paris_time``, ``duration``, ``within`` and the template filters of the same names) are what
the rest of the provider uses.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from babel.dates import TIMEDELTA_UNITS, format_datetime, format_time
from babel.units import format_unit

LOCALE = "fr_FR"
PARIS = ZoneInfo("Europe/Paris")

#: CLDR pattern of ``paris``: « mardi 24 novembre 2026 à 11 h 05 » (French public-service style for the hour).
_DATETIME_PATTERN = "EEEE d MMMM y 'à' H 'h' mm"
_TIME_PATTERN = "H 'h' mm"


def to_paris(dt: datetime) -> datetime:
    """A naive UTC datetime (as stored) in Paris local time."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(PARIS)


def paris(dt: datetime | None) -> str:
    """``le mardi 24 novembre 2026 à 11 h 05``, ``le mardi 1er décembre 2026 à 9 h 00`` (Paris summer/winter time)."""
    if dt is None:
        return ""
    local = to_paris(dt)
    # French writes the first day of a month as an ordinal: « le mardi 1er décembre ».
    pattern = _DATETIME_PATTERN.replace(" d ", " '1er' ") if local.day == 1 else _DATETIME_PATTERN
    return "le " + format_datetime(local, pattern, tzinfo=PARIS, locale=LOCALE)


def paris_time(dt: datetime | None) -> str:
    """``11 h 05``."""
    if dt is None:
        return ""
    return format_time(to_paris(dt), _TIME_PATTERN, tzinfo=PARIS, locale=LOCALE)


def _count_and_unit(value: int | float | timedelta) -> tuple[int, str]:
    """``value`` seconds as a whole number of the largest Babel unit that divides it exactly."""
    seconds = max(0, int(value.total_seconds() if isinstance(value, timedelta) else value))
    for unit, size in TIMEDELTA_UNITS:
        if seconds and seconds % size == 0:
            return seconds // size, unit
    return seconds, "second"


def duration(value: int | float | timedelta) -> str:
    """A lifetime from a setting, exactly, in the largest CLDR unit that divides it.

    ``60`` → « 1 minute », ``900`` → « 15 minutes », ``5400`` → « 90 minutes »,
    ``3600`` → « 1 heure », ``15552000`` (180 days) → « 6 mois ». Babel's
    ``format_timedelta`` rounds (5400 s would read « 2 heures »), which would tell a
    person a wrong lifetime; the unit is therefore chosen here so that the number is
    exact, and CLDR gives its word and plural. Units are Babel's own (a month is 30
    days, a year 365 days).
    """
    count, unit = _count_and_unit(value)
    return format_unit(count, f"duration-{unit}", length="long", locale=LOCALE)


def within(value: int | float | timedelta) -> str:
    """The seed's « dans les 15 minutes », and « dans un délai de 1 minute » when the count is one.

    « dans les 1 minute » is wrong French, and the singular forms (« dans la minute »,
    « dans l'heure », « dans le mois ») change article with the unit: one neutral form
    for a count of one keeps every setting value correct.
    """
    count, _ = _count_and_unit(value)
    return ("dans un délai de " if count <= 1 else "dans les ") + duration(value)


def init_app(app) -> None:
    app.add_template_filter(paris, "paris")
    app.add_template_filter(paris_time, "paris_time")
    app.add_template_filter(duration, "duration")
    app.add_template_filter(within, "within")
