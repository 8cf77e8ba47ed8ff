"""A pooled database connection lost while it waited is replaced before a request uses it.

There is no ping before every use (``pool_pre_ping`` is off: one round trip per
request on PostgreSQL); a connection that sat idle in the pool for
``idp.extensions.PING_AFTER_IDLE`` seconds is checked at checkout, and replaced
when the check fails. Here the server ends the pooled connection's backend
(``pg_terminate_backend``, what a PostgreSQL restart or failover does to every
connection) while it is idle: the next request answers as usual. With the check
off, the same request would meet the dead connection and answer 503 — the control
case shows the test can fail.
"""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from idp import extensions
from idp.extensions import db

BOGUS = {"Authorization": "Bearer not-a-token"}


def userinfo(web):
    """A request that reads the database, its connection back in the pool afterwards.

    (The test's own app context outlives the request: its session is removed here,
    as Flask-SQLAlchemy does at the end of a request's own context in production.)
    """
    response = web.get("/userinfo", headers=BOGUS)
    db.session.remove()
    return response


def terminate_pooled_backend(app, web, database_url) -> None:
    """One request leaves one idle connection in the pool; its server process is then ended."""
    db.session.remove()
    db.engine.dispose()
    assert userinfo(web).status_code == 401
    assert db.engine.pool.checkedin() == 1
    with db.engine.connect() as conn:  # that same pooled connection
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        conn.rollback()
    dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]


@pytest.fixture
def postgresql_only(database_url):
    url, _ = database_url
    if not url.startswith("postgresql"):
        pytest.skip("SQLite has no server to lose a connection to")
    return url


def test_a_connection_lost_while_idle_is_replaced_before_the_request_uses_it(
        app, web, postgresql_only, monkeypatch):
    monkeypatch.setattr(extensions, "PING_AFTER_IDLE", 0.0)  # as after a second in the pool
    terminate_pooled_backend(app, web, postgresql_only)
    assert userinfo(web).status_code == 401
    assert userinfo(web).status_code == 401


def test_control_without_the_idle_check_the_dead_connection_answers_503_then_the_pool_recovers(
        app, web, postgresql_only, monkeypatch):
    monkeypatch.setattr(extensions, "PING_AFTER_IDLE", 3600.0)  # never checked
    terminate_pooled_backend(app, web, postgresql_only)
    dead = userinfo(web)
    assert dead.status_code == 503 and dead.json["error"] == "temporarily_unavailable"
    # The disconnect invalidated the pool: the next request connects anew.
    assert userinfo(web).status_code == 401
