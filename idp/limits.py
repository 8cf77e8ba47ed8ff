"""Atomic limits in the database: failure counters, lockouts and quotas.

A :class:`Policy` says how many events lock a key, for how long, and over which
window. Every event is *reserved* before the work it guards, by
:func:`reserve`: one SQL statement (an upsert whose WHERE clause holds the rule)
that either takes one of the attempts left and returns it, or takes nothing
because the key is locked. Only then is the secret checked, the mail sent. So
however many requests race on however many workers and hosts, no more events
than the policy allows are ever worked on: on PostgreSQL the row lock taken by
``INSERT … ON CONFLICT DO UPDATE`` serialises them and the WHERE clause is
evaluated on the newest row; SQLite serialises writers.

Afterwards the caller settles the attempt: a success :func:`release`\\ s the
counter (a right password resets the count of wrong ones), a mail that could not
be sent is :func:`give_back`\\ -ed (an outage costs the person nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, null, or_, select, update
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
    #: Whether the event that sets the lock is itself allowed. A guess is: the third
    #: wrong password is checked, and its failure locks. A quota request is not: the
    #: request one past the quota is the one refused, and it starts the block.
    locking_event_allowed: bool = True


@dataclass(frozen=True)
class Attempt:
    """What :func:`reserve` gave: whether to go on, and the lock now in force (if any).

    ``allowed`` with a lock: the last attempt of the period; it was taken, and the
    key is locked for everyone else meanwhile.
    """

    allowed: bool
    locked_until: datetime | None = None


def _not_locked(now: datetime):
    return or_(Limit.locked_until.is_(None), Limit.locked_until <= now)


def locked_until(policy: Policy, key: str) -> datetime | None:
    """When the lock on ``key`` ends, or None if it is not locked."""
    until = db.session.scalar(select(Limit.locked_until).where(Limit.kind == policy.kind, Limit.key == key))
    return until if until is not None and until > utcnow() else None


def count(policy: Policy, key: str) -> int:
    return db.session.scalar(select(Limit.count).where(Limit.kind == policy.kind, Limit.key == key)) or 0


def _insert():
    return pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert


def reserve(policy: Policy, key: str, commit: bool = True) -> Attempt:
    """Take one event of ``policy`` for ``key``, before doing what it guards; one statement.

    Not counted, and the lock not extended, while ``key`` is locked. The event that
    reaches ``lock_at`` sets the lock in the same statement. Commits (so that the
    reservation holds for the other workers while this one verifies or sends, and so
    that no lock is held during that work: on SQLite a write lock is the whole
    database's); ``commit=False`` lets the caller commit it with its own write.

    The commit keeps what the session has loaded (the login flow, the person): the
    reservation wrote only this counter, so reloading them after it, as a plain
    commit would, is a statement each for nothing. What must not be stale after the
    reservation is guarded by its own conditional statement (the code is consumed by
    an UPDATE that names it).
    """
    now = utcnow()
    until = now + timedelta(seconds=policy.lock_seconds)
    # Counting starts again after a lock has ended, or once the window has passed.
    fresh = or_(Limit.window_started_at.is_(None), Limit.locked_until <= now)
    if policy.window_seconds:
        fresh = or_(fresh, Limit.window_started_at <= now - timedelta(seconds=policy.window_seconds))
    new_count = case((fresh, 1), else_=Limit.count + 1)
    locks = new_count >= policy.lock_at
    statement = (
        _insert()(Limit)
        .values(kind=policy.kind, key=key, count=1, window_started_at=now,
                locked_until=until if policy.lock_at <= 1 else None)
        .on_conflict_do_update(
            index_elements=["kind", "key"],
            set_={
                "count": new_count,
                "window_started_at": case((fresh, now), else_=Limit.window_started_at),
                "locked_until": case((locks, until), else_=null()),
            },
            where=_not_locked(now),
        )
        .returning(Limit.locked_until)
    )
    taken = db.session.execute(statement).first()
    if taken is None:  # locked: nothing taken, nothing extended
        attempt = Attempt(False, locked_until(policy, key) or until)
    elif taken.locked_until is not None:  # this event set the lock
        attempt = Attempt(policy.locking_event_allowed, taken.locked_until)
    else:
        attempt = Attempt(True)
    if commit:
        commit_keeping_loaded()
    return attempt


def commit_keeping_loaded() -> None:
    """Commit without expiring the objects the session holds (they are not read again)."""
    session = db.session()
    keep = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = keep


def hit(policy: Policy, key: str, commit: bool = True) -> datetime | None:
    """Count one event (a failure, a request); the end of the lock now in force, if any."""
    return reserve(policy, key, commit).locked_until


def give_back(policy: Policy, key: str) -> None:
    """Return an event reserved for work that was not done (a mail not sent, no code left to
    compare), as if it had not been made; the caller commits.

    The count of the period goes down by one, and a lock it no longer reaches is
    lifted, so that give-backs of racing attempts add up in any order. A lock that
    has already ended belongs to a past period: nothing to give back there.
    """
    db.session.execute(
        update(Limit)
        .where(Limit.kind == policy.kind, Limit.key == key, Limit.count > 0,
               or_(Limit.locked_until.is_(None), Limit.locked_until > utcnow()))
        .values(count=Limit.count - 1,
                locked_until=case((Limit.count - 1 < policy.lock_at, null()), else_=Limit.locked_until))
    )


def release(policy: Policy, key: str) -> None:
    """A success: forget the events, and lift the lock the last allowed attempt may have set.

    Only an attempt that :func:`reserve` allowed can succeed, so a lock in force
    here was set at or after that reservation, by this attempt or one racing it.
    The caller commits.
    """
    unlock(policy, key)


def reset(policy: Policy, key: str, *others: Policy) -> None:
    """Forget the events (a success); a lock in force stays (the code quota's block runs its hour).

    Several policies of one key are reset by one statement.
    """
    kinds = [policy.kind, *(other.kind for other in others)]
    db.session.execute(
        update(Limit).where(Limit.kind.in_(kinds), Limit.key == key).values(count=0, window_started_at=None)
    )


def unlock(policy: Policy, key: str) -> None:
    db.session.execute(
        update(Limit)
        .where(and_(Limit.kind == policy.kind, Limit.key == key))
        .values(count=0, window_started_at=None, locked_until=None)
    )
