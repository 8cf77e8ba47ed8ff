"""``idp demo``: get a working demo in one command (idempotent).

Runs ``idp init`` (migrations, signing keys), registers the demo relying party
(redirect URI ``ISSUER/demo/callback``, post-logout ``ISSUER/demo/``), writes its
credentials file, creates one demo person per case worth trying and prints them
with their shared password, birth date (asked by the forgotten-password journey) and what each one
lets you try. The demo pages need ``IDP_DEMO=1``.
"""

from __future__ import annotations

import os

import click
from flask import current_app
from flask.cli import with_appcontext

from .admin import init_command


@click.command("demo")
@click.option("--reset-users", is_flag=True,
              help="Restore every demo person's details and password (by default existing ones are kept). "
                   "The demo relying party is left as registered, for the issuer of its credentials file, "
                   "unless IDP_ISSUER is set.")
@with_appcontext
@click.pass_context
def demo_command(ctx: click.Context, reset_users: bool) -> None:
    """Set up the demo: relying party, credentials file and demo people."""
    from ..demo import accounts, credentials

    ctx.invoke(init_command)
    stored = credentials.read()
    if reset_users and stored is not None and "IDP_ISSUER" not in os.environ:
        # Only the people: the relying party stays registered for the demo that is running (maybe on
        # another port than the default issuer's), whose address its credentials file records.
        issuer = stored.issuer
        click.echo(f"Demo relying party {stored.client_id}: kept for {issuer}.")
    else:
        issuer = current_app.config["IDP_ISSUER"]
        creds, outcome = accounts.ensure_client(issuer)
        click.echo(f"Demo relying party {creds.client_id}: {outcome}; credentials in {credentials.path()} "
                   "(mode 0600).")
    results = accounts.ensure_users(reset=reset_users)

    counts = {k: sum(1 for _, o in results if o == k) for k in ("created", "reset", "kept")}
    click.echo(f"Demo people: {counts['created']} created, {counts['reset']} reset, {counts['kept']} kept.")
    click.echo("")
    width = max(len(a.nir_display) for a, _ in results)
    click.echo(f"{'NIR':<{width}}  {'Born':<10}  {'Name':<18}  Situation")
    for account, _ in results:
        name = f"{account.given_name} {account.family_name}"
        click.echo(f"{account.nir_display:<{width}}  {account.birth_date_display}  {name:<18}  {account.situation}")
        click.echo(f"{'':<{width}}  {'':<10}  {'':<18}  → {account.shows}")
    click.echo("")
    click.echo(f"Password of every demo person: {accounts.DEMO_PASSWORD}")
    if counts["kept"]:
        click.echo("(people kept as they were: run `idp demo --reset-users` if a password was changed)")
    click.echo(f"Demo: {issuer}/demo/   mailbox: {issuer}/demo/mailbox")
    if not current_app.config.get("IDP_DEMO"):
        click.echo("The demo pages are off: start the server with IDP_DEMO=1 (never in production).")


COMMANDS = [demo_command]
