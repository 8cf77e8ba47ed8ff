"""Counters that enforce a limit, shared by every worker and host.

One row per (kind, key): how many events in the current window, and until when
the key is locked. Only :mod:`idp.limits` writes here, with single UPDATE
statements whose WHERE clause carries the rule, so concurrent requests cannot
count past a limit.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class Limit(db.Model):
    __tablename__ = "limits"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime | None] = mapped_column(DateTime)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
