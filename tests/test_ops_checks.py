"""Start-up checks: ``idp check`` on good and bad configurations, and ``idp serve`` refusing to start in production."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import delete, text

from conftest import KEY_SECRET, _settings, free_port
from idp import config, create_app
from idp.extensions import db
from idp.models import SigningKey
from idp.ops import schema

LONG_SECRET = "x" * 20 + "ProductionSecret-0123456789-abcdefghij"


@pytest.fixture
def production(app, outbox_dir):
    """``make(**overrides)``: an app on the test's database configured for production, and ``idp check`` on it."""
    def make(workers: int = 2, **overrides):
        settings = _settings(app.config["IDP_DATABASE_URL"], "https://idp.example.fr", outbox_dir, **{
            "TESTING": False, "SECRET_KEY": LONG_SECRET, "MAIL_URL": "smtp://127.0.0.1:2525?starttls=1",
            "RATE_LIMIT_STORAGE_URI": "redis://127.0.0.1:6379/4", "ENV": "production", **overrides})
        prod = create_app(settings)
        with prod.app_context():  # the command runs in it (the test's own app context is pushed already)
            result = prod.test_cli_runner().invoke(args=["check", "--workers", str(workers)])
            db.session.remove()
            db.engine.dispose()
        assert "Traceback" not in result.output, result.output
        return result

    return make


def problems(result) -> list[str]:
    return [line[2:] for line in result.output.splitlines() if line.startswith("- ")]


def test_a_production_configuration_passes_on_postgresql_and_sqlite_is_the_one_problem(production, app):
    result = production()
    if app.config["IDP_DATABASE_URL"].startswith("sqlite"):
        assert result.exit_code == 1
        assert len(problems(result)) == 1, result.output
        [problem] = problems(result)
        assert problem.startswith("IDP_DATABASE_URL is SQLite: set it to postgresql+psycopg://")
    else:
        assert result.exit_code == 0, result.output
        assert "Ready for production: no problem found." in result.output


@pytest.mark.parametrize("overrides, workers, expected", [
    ({"ISSUER": "http://idp.example.fr"}, 2, "IDP_ISSUER is http://idp.example.fr: set it to the provider's public https://"),
    ({"SECRET_KEY": "short-secret"}, 2, "IDP_SECRET_KEY is 12 characters long: set one of at least 32"),
    ({"MAIL_URL": "console://"}, 2, "IDP_MAIL_URL is console:// (mails are kept on disk, never sent): set it to smtp://"),
    ({"DEMO": True}, 2, "IDP_DEMO is on"),
    ({"TESTING": True}, 2, "IDP_TESTING is on"),
    ({"RATE_LIMIT_STORAGE_URI": "memory://"}, 2, "IDP_RATE_LIMIT_STORAGE_URI is memory:// with 2 workers"),
], ids=["issuer", "short-secret", "console-mail", "demo", "testing", "memory-limits"])
def test_each_dangerous_setting_is_named_with_what_to_set(production, overrides, workers, expected):
    result = production(workers=workers, **overrides)
    assert result.exit_code == 1
    assert any(p.startswith(expected) for p in problems(result)), result.output


def test_memory_limits_with_one_worker_are_not_a_problem(production, app):
    result = production(workers=1, RATE_LIMIT_STORAGE_URI="memory://")
    assert not any("RATE_LIMIT" in p for p in problems(result)), result.output


def test_a_generated_secret_key_is_refused(production, monkeypatch, tmp_path):
    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path)  # where it is generated: not the repository's instance/
    result = production(SECRET_KEY=None)
    assert result.exit_code == 1
    assert any(p.startswith(f"IDP_SECRET_KEY is not set (a generated one in {tmp_path / 'secret-key'} is used)")
               for p in problems(result)), result.output


def test_a_key_secret_file_readable_by_others_is_refused(production, monkeypatch, tmp_path):
    monkeypatch.setattr(config, "KEYS_DIR", tmp_path)
    secret_file = tmp_path / "key-secret"
    secret_file.write_text(KEY_SECRET + "\n")
    secret_file.chmod(0o644)
    result = production(KEY_SECRET=None)
    assert any(p.startswith(f"{secret_file} (the key-encryption secret) has mode 0644, readable by others: "
                            f"`chmod 600 {secret_file}`") for p in problems(result)), result.output
    secret_file.chmod(0o600)
    assert not any("key-encryption" in p for p in problems(production(KEY_SECRET=None)))


def test_no_active_signing_key_is_refused(production):
    db.session.execute(delete(SigningKey).where(SigningKey.status == "active"))
    db.session.commit()
    result = production()
    assert any(p == "No active RS256 or ES256 signing key: run `idp init` (or `idp keys rotate`)." for p in problems(result))


def test_migrations_behind_are_refused(production):
    [head] = schema.heads()
    db.session.execute(text("UPDATE alembic_version SET version_num = '0006_backchannel_logout'"))
    db.session.commit()
    try:
        result = production()
    finally:
        db.session.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
        db.session.commit()
    assert any(p.startswith(f"The database schema is at 0006_backchannel_logout, the code at {head}: run `idp init`")
               for p in problems(result)), result.output


def _serve_env(app, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    for setting in config.SETTINGS:
        value = app.config.get(setting.env)
        if value is not None:
            env[setting.env] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    env.update(extra)
    return env


def test_idp_serve_refuses_to_start_in_production_with_problems(app):
    port = free_port()
    idp = str(Path(sys.executable).with_name("idp"))
    env = _serve_env(app, IDP_ENV="production", IDP_ISSUER="http://127.0.0.1:1")
    run = subprocess.run([idp, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "- IDP_ISSUER is http://127.0.0.1:1: set it to the provider's public https:// URL" in run.stderr
    assert "- IDP_TESTING is on" in run.stderr
    assert "IDP_ENV=production: not starting while `idp check` finds problems (above)." in run.stderr
    assert "Spawning worker" not in run.stderr  # granian was never started


def test_idp_serve_starts_in_production_when_idp_check_passes(app, make_served):
    if app.config["IDP_DATABASE_URL"].startswith("sqlite"):
        pytest.skip("a production configuration needs PostgreSQL (idp check refuses SQLite)")
    served = make_served(workers=1, threads=2, extra_env={
        "IDP_ENV": "production", "IDP_TESTING": "0", "IDP_ISSUER": "https://idp.example.fr"})
    assert served.process.poll() is None
    import requests

    assert requests.get(served.url + "/readyz", timeout=5).json()["status"] == "ok"
