"""The schema comes from the Alembic migrations, and they match the models exactly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from idp import create_app
from idp.extensions import db


def test_migrated_schema_matches_the_models(app):
    """On each backend: what the migrations built is what the models declare."""
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == []


def test_migrations_go_down_and_up_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    app = create_app({"DATABASE_URL": url, "TESTING": True, "SECRET_KEY": "x" * 32, "MAIL_OUTBOX_DIR": str(tmp_path)})
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        assert db.inspect(db.engine).get_table_names() == ["alembic_version"]
        upgrade()
        assert {"users", "clients", "grants", "tokens", "signing_keys", "login_flows", "limits",
                "trusted_devices", "email_validations"} <= set(db.inspect(db.engine).get_table_names())
        db.engine.dispose()
