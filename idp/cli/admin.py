"""``idp init``, ``idp run`` and ``idp settings``."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade

from .. import config


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Apply migrations and create the signing keys if there are none (idempotent)."""
    from ..oidc import keys

    if not current_app.config.get("IDP_KEY_SECRET"):
        config.ensure_key_secret()
    upgrade()
    created = keys.ensure_keys()
    click.echo(f"Database ready; {len(created)} signing key(s) created.")


@click.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def run_command(host: str, port: int) -> None:
    """Development server (production: gunicorn wsgi:app)."""
    from werkzeug.serving import run_simple

    # Flask ignores app.run() under its own CLI; serve the app directly.
    run_simple(host, port, current_app._get_current_object(), threaded=True)


@click.command("settings")
def settings_command() -> None:
    """List every setting, its environment variable, its default and its meaning."""
    for s in config.SETTINGS:
        click.echo(f"{s.env:<34} default: {s.default!r}\n    {s.doc}")


COMMANDS = [init_command, run_command, settings_command]
