"""Atomic limits in the database: failure counters, lockouts and quotas.

A :class:`Policy` says how many events lock a key, for how long, and over which
window. :func:`hit` records one event and returns the lock it caused (or the lock
already in force, in which case the event is *not* counted and the lock is not
extended). Each step is one SQL statement whose WHERE clause holds the rule, so
that fifty requests racing on several workers or hosts count exactly as one
worker would: on PostgreSQL the row lock taken by the UPDATE serialises them and
the WHERE clause is re-checked after the wait; SQLite serialises writers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .extensions import db
from .models import utcnow
from .models.limits import Limit


@dataclass(frozen=True)
class Policy:
    kind: str
    #: The event that brings the count to this number locks the key.
    lock_at: int
    lock_seconds: int
    #: Events older than this are forgotten (None: only a reset forgets them).
    window_seconds: int | None = None


def _not_locked(now: datetime):
    return or_(Limit.locked_until.is_(None), Limit.locked_until <= now)


def locked_until(policy: Policy, key: str) -> datetime | None:
    """When the lock on ``key`` ends, or None if it is not locked."""
    until = db.session.scalar(select(Limit.locked_until).where(Limit.kind == policy.kind, Limit.key == key))
    return until if until is not None and until > utcnow() else None


def count(policy: Policy, key: str) -> int:
    return db.session.scalar(select(Limit.count).where(Limit.kind == policy.kind, Limit.key == key)) or 0


def hit(policy: Policy, key: str, commit: bool = True) -> datetime | None:
    """Count one event; return the end of the lock now in force, if any.

    Commits, so that the count holds even when the request fails afterwards;
    ``commit=False`` lets the caller commit it with its own write, in one transaction.
    """
    now = utcnow()
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.session.execute(
        insert(Limit).values(kind=policy.kind, key=key, count=0).on_conflict_do_nothing(index_elements=["kind", "key"])
    )
    if policy.window_seconds:
        expired = or_(
            Limit.window_started_at.is_(None),
            Limit.window_started_at <= now - timedelta(seconds=policy.window_seconds),
        )
    else:
        expired = Limit.window_started_at.is_(None)
    new_count = db.session.execute(
        update(Limit)
        .where(Limit.kind == policy.kind, Limit.key == key, _not_locked(now))
        .values(
            count=case((expired, 1), else_=Limit.count + 1),
            window_started_at=case((expired, now), else_=Limit.window_started_at),
        )
        .returning(Limit.count)
    ).scalar()
    if new_count is None:  # locked meanwhile: not counted, not extended
        until = locked_until(policy, key)
    elif new_count >= policy.lock_at:
        until = now + timedelta(seconds=policy.lock_seconds)
        db.session.execute(
            update(Limit)
            .where(and_(Limit.kind == policy.kind, Limit.key == key, _not_locked(now)))
            .values(locked_until=until, count=0, window_started_at=None)
        )
    else:
        until = None
    if commit:
        db.session.commit()
    return until


def reset(policy: Policy, key: str) -> None:
    """Forget the events (a success); a lock in force stays."""
    db.session.execute(
        update(Limit).where(Limit.kind == policy.kind, Limit.key == key).values(count=0, window_started_at=None)
    )


def unlock(policy: Policy, key: str) -> None:
    db.session.execute(
        update(Limit)
        .where(Limit.kind == policy.kind, Limit.key == key)
        .values(count=0, window_started_at=None, locked_until=None)
    )
