"""The ``idp`` command: a Flask CLI group on the app factory.

Each area has its own module and click group (``users``, ``clients``, ``keys``,
``demo``...); :func:`register` adds them all to the app's CLI.
"""

from __future__ import annotations

import click
from flask.cli import FlaskGroup


def register(app) -> None:
    from . import admin, audit, check, clients, demo, keys, purge, users

    for module in (admin, check, users, clients, keys, purge, audit, demo):
        for command in module.COMMANDS:
            app.cli.add_command(command)


def _create_app():
    from .. import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False, add_version_option=False)
def main() -> None:
    """Administer the idp OpenID Provider."""


def _add_serve() -> None:
    """``idp serve`` belongs to the group itself: the server's master process never builds the app."""
    from .serve import serve

    main.add_command(serve)


_add_serve()
