"""``idp.limits``: the counters behind cases 3, 5 and 6 (in the database, atomic).

A policy locks a key at its ``lock_at``-th event for ``lock_seconds``; events
during a lock are not counted and do not extend it; a success (``reset``)
forgets the events but not a lock in force; a window forgets old events.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from idp import limits
from idp.extensions import db
from idp.limits import Policy
from idp.login import policy as login_policy
from idp.models import Limit, utcnow

THREE = Policy("test", lock_at=3, lock_seconds=300)
WINDOWED = Policy("test-window", lock_at=3, lock_seconds=3600, window_seconds=600)


def row(policy: Policy, key: str) -> Limit | None:
    db.session.expire_all()
    return db.session.scalar(select(Limit).where(Limit.kind == policy.kind, Limit.key == key))


def set_row(policy: Policy, key: str, **values) -> None:
    db.session.execute(update(Limit).where(Limit.kind == policy.kind, Limit.key == key).values(**values))
    db.session.commit()


def near(value, expected, seconds: int = 3) -> bool:
    return abs((value - expected).total_seconds()) <= seconds


def test_the_lock_at_th_event_locks_for_lock_seconds(app):
    assert limits.hit(THREE, "k") is None
    assert limits.hit(THREE, "k") is None
    assert limits.count(THREE, "k") == 2 and limits.locked_until(THREE, "k") is None
    until = limits.hit(THREE, "k")
    assert until is not None and near(until, utcnow() + timedelta(seconds=300))
    assert limits.locked_until(THREE, "k") == until
    assert row(THREE, "k").count == 3  # the events of the period; the next one after the lock starts again at 1


def test_events_during_a_lock_are_not_counted_and_do_not_extend_it(app):
    for _ in range(3):
        limits.hit(THREE, "k")
    until = utcnow() + timedelta(seconds=100)   # 200 seconds have passed
    set_row(THREE, "k", locked_until=until)
    for _ in range(5):
        assert limits.hit(THREE, "k") == until
    assert row(THREE, "k").count == 3 and row(THREE, "k").locked_until == until


def test_after_the_lock_counting_starts_again(app):
    for _ in range(3):
        limits.hit(THREE, "k")
    set_row(THREE, "k", locked_until=utcnow())
    assert limits.locked_until(THREE, "k") is None
    assert limits.hit(THREE, "k") is None and limits.count(THREE, "k") == 1
    assert limits.hit(THREE, "k") is None
    assert limits.hit(THREE, "k") is not None


def test_reset_forgets_the_events_but_keeps_a_lock(app):
    limits.hit(THREE, "k")
    limits.hit(THREE, "k")
    limits.reset(THREE, "k")
    db.session.commit()
    assert limits.count(THREE, "k") == 0
    assert limits.hit(THREE, "k") is None and limits.hit(THREE, "k") is None
    until = limits.hit(THREE, "k")
    limits.reset(THREE, "k")
    db.session.commit()
    assert limits.locked_until(THREE, "k") == until


def test_unlock_lifts_the_lock(app):
    for _ in range(3):
        limits.hit(THREE, "k")
    limits.unlock(THREE, "k")
    db.session.commit()
    assert limits.locked_until(THREE, "k") is None and limits.count(THREE, "k") == 0


def test_window_forgets_old_events(app):
    limits.hit(WINDOWED, "k")
    limits.hit(WINDOWED, "k")
    set_row(WINDOWED, "k", window_started_at=utcnow() - timedelta(seconds=600))
    assert limits.hit(WINDOWED, "k") is None and limits.count(WINDOWED, "k") == 1
    assert limits.hit(WINDOWED, "k") is None
    assert limits.hit(WINDOWED, "k") is not None


def test_keys_and_kinds_are_independent(app):
    other_kind = Policy("test-other", lock_at=3, lock_seconds=300)
    for _ in range(3):
        limits.hit(THREE, "a")
    assert limits.locked_until(THREE, "a") is not None
    assert limits.locked_until(THREE, "b") is None and limits.hit(THREE, "b") is None
    assert limits.locked_until(other_kind, "a") is None and limits.hit(other_kind, "a") is None


def test_policies_of_the_login_journey_follow_the_settings(app):
    app.config.update(IDP_MAX_PASSWORD_FAILURES=4, IDP_MAX_CODE_FAILURES=2, IDP_LOCK_DURATION=120,
                      IDP_CODE_QUOTA=7, IDP_CODE_QUOTA_BLOCK=1800, IDP_CODE_QUOTA_WINDOW=900)
    assert login_policy.password_failures() == Policy("password", 4, 120)
    assert login_policy.code_failures() == Policy("code", 2, 120)
    # Seven codes may be asked; the eighth request is the one that blocks.
    assert login_policy.code_quota() == Policy("code-quota", 8, 1800, 900, locking_event_allowed=False)


def test_seed_numbers_are_the_defaults(app):
    assert login_policy.password_failures() == Policy("password", 3, 300)
    assert login_policy.code_failures() == Policy("code", 3, 300)
    assert login_policy.code_quota().lock_seconds == 3600
    assert app.config["IDP_CODE_LIFETIME"] == 900
    assert app.config["IDP_TRUSTED_DEVICE_LIFETIME"] == 180 * 24 * 3600


def test_nir_key_ignores_separators_and_hides_the_nir(app):
    from conftest import make_nir

    nir = make_nir()
    spaced = f"{nir[0]} {nir[1:3]} {nir[3:5]} {nir[5:7]} {nir[7:10]} {nir[10:13]} {nir[13:]}"
    key = login_policy.nir_key(nir)
    assert key == login_policy.nir_key(spaced) == login_policy.nir_key(spaced.replace(" ", "."))
    assert nir not in key and len(key) == 64


@pytest.mark.parametrize("threads", [40])
def test_parallel_events_count_exactly_up_to_the_lock(app, threads):
    """Forty workers hit one key at once: exactly ``lock_at - 1`` pass, every other one sees the lock."""
    barrier = threading.Barrier(threads)
    results = []
    errors = []

    def worker():
        try:
            with app.app_context():
                barrier.wait(timeout=30)
                results.append(limits.hit(THREE, "race"))
                db.session.remove()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    assert errors == []
    assert len(results) == threads
    assert sum(r is None for r in results) == THREE.lock_at - 1
    locks = {r for r in results if r is not None}
    assert len(locks) == 1                      # one lock, never extended
    assert row(THREE, "race").locked_until == locks.pop() and row(THREE, "race").count == THREE.lock_at
