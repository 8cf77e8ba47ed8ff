"""``/healthz`` and ``/readyz`` (issue 10, endpoints for the platform)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, event, text

from conftest import _settings
from idp import create_app
from idp.extensions import db
from idp.models import SigningKey
from idp.ops import schema

CHECKS = {"database", "migrations", "signing_key", "mail"}


class Statements:
    """Count the SQL statements the app sends (its own engine)."""

    def __init__(self, engine):
        self.count = 0
        self.engine = engine

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._one)
        return self

    def _one(self, *args):
        self.count += 1

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._one)


def test_healthz_answers_ok_and_touches_nothing(app, web):
    with Statements(db.engine) as statements:
        r = web.get("/healthz")
    assert r.status_code == 200 and r.get_json() == {"status": "ok"}
    assert statements.count == 0
    assert "Set-Cookie" not in r.headers and r.headers["Cache-Control"] == "no-store"


def test_healthz_answers_while_the_database_is_unreachable(outage_app):
    assert outage_app.test_client().get("/healthz").status_code == 200


def test_readyz_names_each_check_and_answers_200_when_all_pass(app, web):
    r = web.get("/readyz")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body == {"status": "ok", "checks": {name: "ok" for name in CHECKS}}
    assert "Set-Cookie" not in r.headers


@pytest.mark.parametrize("settings", [{"READYZ_CACHE_SECONDS": 0, "KEY_CACHE_SECONDS": 0}])
def test_readyz_503_without_an_active_signing_key(app, web):
    db.session.execute(delete(SigningKey).where(SigningKey.status == "active"))
    db.session.commit()
    r = web.get("/readyz")
    assert r.status_code == 503
    assert r.get_json() == {"status": "unavailable", "checks": {"database": "ok", "migrations": "ok",
                                                                "signing_key": "no active key", "mail": "ok"}}


@pytest.mark.parametrize("settings", [{"READYZ_CACHE_SECONDS": 0}])
def test_readyz_503_while_the_schema_is_behind_the_code(app, web):
    [head] = schema.heads()
    db.session.execute(text("UPDATE alembic_version SET version_num = '0006_backchannel_logout'"))
    db.session.commit()
    try:
        r = web.get("/readyz")
        assert r.status_code == 503 and r.get_json()["checks"]["migrations"] == "not at head"
        assert r.get_json()["checks"]["database"] == "ok"
    finally:
        db.session.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
        db.session.commit()
    assert web.get("/readyz").status_code == 200


@pytest.mark.parametrize("settings", [{"READYZ_CACHE_SECONDS": 0, "MAIL_URL": "carrier-pigeon://loft"}])
def test_readyz_503_when_no_mail_transport_is_configured(app, web):
    r = web.get("/readyz")
    assert r.status_code == 503 and r.get_json()["checks"]["mail"] == "not configured"


@pytest.fixture
def outage_app(outbox_dir):
    """An app whose PostgreSQL refuses connections (nothing listens on port 1)."""
    app = create_app(_settings("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2",
                               "http://127.0.0.1:5000", outbox_dir, READYZ_CACHE_SECONDS=0))
    yield app
    with app.app_context():
        db.engine.dispose()


def test_readyz_503_when_the_database_is_unreachable(outage_app):
    r = outage_app.test_client().get("/readyz")
    assert r.status_code == 503
    assert r.get_json() == {"status": "unavailable", "checks": {"database": "unreachable", "migrations": "unknown",
                                                                "signing_key": "unknown", "mail": "ok"}}


@pytest.mark.parametrize("settings", [{"READYZ_CACHE_SECONDS": 60}])
def test_readyz_is_kept_per_process_so_a_probe_every_second_costs_little(app, web):
    with Statements(db.engine) as first:
        assert web.get("/readyz").status_code == 200
    with Statements(db.engine) as then:
        for _ in range(20):
            assert web.get("/readyz").status_code == 200
    # One read of alembic_version (and PostgreSQL's SET LOCAL statement_timeout); the key view may be read too.
    assert 1 <= first.count <= 3
    assert then.count == 0


def test_the_head_read_from_the_scripts_is_alembics():
    from alembic.script import ScriptDirectory

    assert schema.heads() == frozenset(ScriptDirectory(str(schema.VERSIONS.parent)).get_heads())
