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

from sqlalchemy import DateTime, Integer, String, bindparam, case, null, or_, select, update
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
    #: This very event set the lock (not one before it): the audit trail's ``lock_set``.
    set_lock: bool = False


# The statements are built once per database dialect, with bind parameters for the key, the
# instants and the policy's numbers: building an upsert's expression (and its cache key) at
# every request cost about as much as running it. They are Core statements on the table, run
# on the session's connection, inside its transaction.
_table = Limit.__table__
_c = _table.c
_KIND = bindparam("b_kind", type_=String)
_KEY = bindparam("b_key", type_=String)
_NOW = bindparam("b_now", type_=DateTime)
_UNTIL = bindparam("b_until", type_=DateTime)
_WINDOW_START = bindparam("b_window_start", type_=DateTime)
_LOCK_AT = bindparam("b_lock_at", type_=Integer)
_FIRST_LOCK = bindparam("b_first_lock", type_=DateTime)
_statements: dict[tuple, object] = {}


def _statement(name: str, build, *variant):
    """The statement ``name`` for the session's dialect (and ``variant``), built once."""
    cache_key = (name, db.session.get_bind().dialect.name, *variant)
    statement = _statements.get(cache_key)
    if statement is None:
        statement = _statements[cache_key] = build(cache_key[1], *variant)
    return statement


def _execute(statement, **params):
    # The parameters' names are prefixed: a column's own name is reserved in an INSERT or UPDATE.
    return db.session.connection().execute(statement, {f"b_{name}": value for name, value in params.items()})


def _build_reserve(dialect: str, windowed: bool):
    # Counting starts again after a lock has ended, or once the window has passed.
    fresh = or_(_c.window_started_at.is_(None), _c.locked_until <= _NOW)
    if windowed:
        fresh = or_(fresh, _c.window_started_at <= _WINDOW_START)
    new_count = case((fresh, 1), else_=_c.count + 1)
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return (
        insert(_table)
        .values(kind=_KIND, key=_KEY, count=1, window_started_at=_NOW, locked_until=_FIRST_LOCK)
        .on_conflict_do_update(
            index_elements=["kind", "key"],
            set_={
                "count": new_count,
                "window_started_at": case((fresh, _NOW), else_=_c.window_started_at),
                "locked_until": case((new_count >= _LOCK_AT, _UNTIL), else_=null()),
            },
            where=or_(_c.locked_until.is_(None), _c.locked_until <= _NOW),  # not locked
        )
        .returning(_c.locked_until)
    )


def _build_locked_until(dialect: str):
    return select(_c.locked_until).where(_c.kind == _KIND, _c.key == _KEY)


def _build_count(dialect: str):
    return select(_c.count).where(_c.kind == _KIND, _c.key == _KEY)


def _build_give_back(dialect: str):
    return (
        update(_table)
        .where(_c.kind == _KIND, _c.key == _KEY, _c.count > 0,
               or_(_c.locked_until.is_(None), _c.locked_until > _NOW))
        .values(count=_c.count - 1,
                locked_until=case((_c.count - 1 < _LOCK_AT, null()), else_=_c.locked_until))
    )


def _build_reset(dialect: str, kinds: int):
    kind = _c.kind == _KIND if kinds == 1 else _c.kind.in_(bindparam("b_kinds", expanding=True))
    return update(_table).where(kind, _c.key == _KEY).values(count=0, window_started_at=None)


def _build_unlock(dialect: str):
    return (
        update(_table)
        .where(_c.kind == _KIND, _c.key == _KEY)
        .values(count=0, window_started_at=None, locked_until=None)
    )


def locked_until(policy: Policy, key: str) -> datetime | None:
    """When the lock on ``key`` ends, or None if it is not locked."""
    until = _execute(_statement("locked_until", _build_locked_until), kind=policy.kind, key=key).scalar()
    return until if until is not None and until > utcnow() else None


def count(policy: Policy, key: str) -> int:
    return _execute(_statement("count", _build_count), kind=policy.kind, key=key).scalar() or 0


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
    reservation is read again or guarded by its own conditional statement (the pending
    code is read again, and consumed by an UPDATE that names it).
    """
    now = utcnow()
    until = now + timedelta(seconds=policy.lock_seconds)
    windowed = bool(policy.window_seconds)
    taken = _execute(
        _statement("reserve", _build_reserve, windowed),
        kind=policy.kind, key=key, now=now, until=until, lock_at=policy.lock_at,
        first_lock=until if policy.lock_at <= 1 else None,
        **({"window_start": now - timedelta(seconds=policy.window_seconds)} if windowed else {}),
    ).first()
    if taken is None:  # locked: nothing taken, nothing extended
        attempt = Attempt(False, locked_until(policy, key) or until)
    elif taken.locked_until is not None:  # this event set the lock
        attempt = Attempt(policy.locking_event_allowed, taken.locked_until, set_lock=True)
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
    _execute(_statement("give_back", _build_give_back), kind=policy.kind, key=key, now=utcnow(),
             lock_at=policy.lock_at)


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
    if not others:
        _execute(_statement("reset", _build_reset, 1), kind=policy.kind, key=key)
        return
    kinds = [policy.kind, *(other.kind for other in others)]
    _execute(_statement("reset", _build_reset, len(kinds)), kinds=kinds, key=key)


def unlock(policy: Policy, key: str) -> None:
    _execute(_statement("unlock", _build_unlock), kind=policy.kind, key=key)
