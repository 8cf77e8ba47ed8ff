"""Key rotation on a schedule: ``idp keys rotate --if-older-than 90d`` from a daily cron, and ``idp keys list``."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from idp.extensions import db
from idp.models import SigningKey, utcnow
from idp.oidc import keys as keystore


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args):
        result = runner.invoke(args=list(args))
        assert "Traceback" not in result.output, result.output
        db.session.expire_all()
        return result

    return invoke


def active(alg: str) -> SigningKey:
    return db.session.scalar(select(SigningKey).where(SigningKey.alg == alg, SigningKey.status == "active"))


def age_active(alg: str, days: int) -> None:
    db.session.execute(update(SigningKey).where(SigningKey.alg == alg, SigningKey.status == "active")
                       .values(activated_at=utcnow() - timedelta(days=days), created_at=utcnow() - timedelta(days=days + 7)))
    db.session.commit()


def test_a_daily_cron_rotates_nothing_while_the_keys_are_young(cli):
    before = {alg: active(alg).kid for alg in keystore.SUPPORTED_ALGS}
    r = cli("keys", "rotate", "--if-older-than", "90d")
    assert r.exit_code == 0, r.output
    for alg in keystore.SUPPORTED_ALGS:
        assert re.search(rf"^{alg}: the active key is \d+[sm] old, younger than 90d: not rotated\.$", r.output, re.M)
    assert r.output.rstrip().endswith("Nothing to rotate.")
    assert {alg: active(alg).kid for alg in keystore.SUPPORTED_ALGS} == before


def test_a_daily_cron_rotates_the_keys_that_are_due_only(cli):
    age_active("RS256", 91)
    age_active("ES256", 30)
    old_rs, next_rs = active("RS256").kid, db.session.scalar(
        select(SigningKey.kid).where(SigningKey.alg == "RS256", SigningKey.status == "next"))
    es = active("ES256").kid
    r = cli("keys", "rotate", "--if-older-than", "90d")
    assert r.exit_code == 0, r.output
    assert f"RS256: {old_rs} retired, {next_rs} active." in r.output
    assert "ES256: the active key is 30d old, younger than 90d: not rotated." in r.output
    assert active("RS256").kid == next_rs and active("ES256").kid == es
    assert db.session.get(SigningKey, old_rs).status == "retired"
    # The next day's run finds the new key young.
    assert "Nothing to rotate." in cli("keys", "rotate", "--if-older-than", "90d").output


def test_a_bad_duration_is_a_usage_error(cli):
    r = cli("keys", "rotate", "--if-older-than", "three months")
    assert r.exit_code == 2 and "must be a duration such as 7d" in r.output


def test_keys_list_shows_ages_and_what_each_key_still_verifies(cli, app):
    age_active("RS256", 91)
    cli("keys", "rotate", "--alg", "RS256")  # the 91-day key is retired now: its tokens verify 600 s more
    db.session.execute(update(SigningKey).where(SigningKey.alg == "RS256", SigningKey.status == "retired")
                       .values(retired_at=utcnow() - timedelta(seconds=60)))
    db.session.commit()
    r = cli("keys", "list")
    assert r.exit_code == 0, r.output
    header, *rows = r.output.splitlines()
    assert header.split() == ["KID", "ALG", "STATUS", "AGE", "CREATED", "ACTIVATED", "RETIRED", "VERIFIES"]
    by_status = {}
    for row in rows:
        by_status.setdefault((row.split()[1], row.split()[2]), []).append(row)
    [retired] = by_status[("RS256", "retired")]
    assert retired.split()[3] == "98d"
    assert "tokens it signed, until " in retired
    assert by_status[("RS256", "active")][0].endswith("signs new tokens; verifies them")
    assert by_status[("ES256", "next")][0].endswith("nothing yet (published; signs after the next rotation)")
    # Once the tokens it signed have expired, it verifies nothing and can be removed.
    db.session.execute(update(SigningKey).where(SigningKey.status == "retired")
                       .values(retired_at=utcnow() - timedelta(seconds=app.config["IDP_ID_TOKEN_LIFETIME"] + 1)))
    db.session.commit()
    [retired] = [row for row in cli("keys", "list").output.splitlines() if " retired " in row]
    kid = retired.split()[0]
    assert retired.endswith(f"nothing (its tokens have expired): idp keys remove {kid}")


def test_two_hosts_cron_jobs_at_once_rotate_once(app):
    """Two scheduled rotations racing (two hosts' crons): one rotates, the other sees the fresh key."""
    if not app.config["IDP_DATABASE_URL"].startswith("postgresql"):
        pytest.skip("SQLite serialises writers itself; the race is PostgreSQL's (row locks)")
    age_active("RS256", 91)
    barrier, results, errors = threading.Barrier(2), [], []

    def cron():
        with app.app_context():
            try:
                barrier.wait(5)
                results.append(keystore.rotate(("RS256",), older_than=90 * 86400))
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=cron) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sorted(len(r) for r in results) == [0, 1]
    db.session.expire_all()
    statuses = db.session.scalars(select(SigningKey.status).where(SigningKey.alg == "RS256")).all()
    assert sorted(statuses) == ["active", "next", "retired"]
