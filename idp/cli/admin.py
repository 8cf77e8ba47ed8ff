"""``idp init``, ``idp run`` and ``idp settings``."""

from __future__ import annotations

import re

import click
from flask import current_app
from flask.cli import with_appcontext
from werkzeug.serving import WSGIRequestHandler

from .. import config

# A query string in a log line: from "?" to the end of the URL (a space, a quote, a colour code).
_QUERY = re.compile(r"\?[^\s'\"\x1b]*")


class PathOnlyRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler, whose log lines never show a query string.

    Authorization requests carry ``login_hint`` (a NIR) and logout requests
    ``id_token_hint``: like the production access log (``idp serve``), the
    development server logs the method and the path only. Every line goes
    through :meth:`log`, the request lines and the errors about a malformed
    request line (which quote it) alike.
    """

    def log(self, type: str, message: str, *args) -> None:
        super().log(type, message, *(_QUERY.sub("", a) if isinstance(a, str) else a for a in args))


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Apply migrations and create the signing keys if there are none (idempotent)."""
    from flask_migrate import upgrade  # here, not at import: the served app never loads alembic

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
    """Development server (production: idp serve)."""
    from werkzeug.serving import run_simple

    # Flask ignores app.run() under its own CLI; serve the app directly.
    run_simple(host, port, current_app._get_current_object(), threaded=True, request_handler=PathOnlyRequestHandler)


@click.command("settings")
def settings_command() -> None:
    """List every setting, its environment variable, its default and its meaning."""
    for s in config.SETTINGS:
        click.echo(f"{s.env:<34} default: {s.default!r}\n    {s.doc}")


COMMANDS = [init_command, run_command, settings_command]
