"""``idp keys``: the signing keys' life cycle (next → active → retired → removed).

Keys live in the database, so a rotation done here is seen at once by every
running worker: no restart. The rules (what may be retired or removed, and when)
are those of :mod:`idp.oidc.keys`; its errors are printed as plain messages.
"""

from __future__ import annotations

from datetime import datetime
from functools import wraps

import click
from flask.cli import with_appcontext

from ..extensions import db
from ..oidc import keys as keystore


def _keystore_errors(f):
    """Turn :class:`KeyStoreError` into a one-line message and exit status 1."""

    @wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except keystore.KeyStoreError as exc:
            db.session.rollback()
            raise click.ClickException(str(exc)) from None

    return wrapper


#: A kid is base64url and may start with "-": take such a word as the argument, not as an option.
KID_ARGUMENT = {"ignore_unknown_options": True}


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else "-"


@click.group("keys")
def keys_group() -> None:
    """ID token signing keys."""


@keys_group.command("list")
@with_appcontext
def list_command() -> None:
    """List every key, published or not yet signing (times in UTC)."""
    rows = [("KID", "ALG", "STATUS", "CREATED", "ACTIVATED", "RETIRED")]
    for k in keystore.all_keys():
        rows.append((k.kid, k.alg, k.status, _when(k.created_at), _when(k.activated_at), _when(k.retired_at)))
    if len(rows) == 1:
        click.echo("No signing keys: run `idp init`.")
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


@keys_group.command("rotate")
@click.option("--alg", type=click.Choice(keystore.SUPPORTED_ALGS),
              help="Rotate only this algorithm's keys (default: all).")
@with_appcontext
@_keystore_errors
def rotate_command(alg: str | None) -> None:
    """The next key becomes active, the active one retired (still published); a new next key is made."""
    algs = (alg,) if alg else keystore.SUPPORTED_ALGS
    published = {(k.alg, k.status) for k in keystore.all_keys()}
    for name in algs:
        if (name, "next") not in published:
            click.echo(f"Warning: no next {name} key was published; the new active key is brand new, and relying "
                       "parties that cached the JWKS may not know it for a few minutes.", err=True)
    for alg_name, old, new in keystore.rotate(algs):
        click.echo(f"{alg_name}: {old} retired, {new} active.")
    click.echo("Running workers sign with the new keys from now on; the retired ones stay in the JWKS.")


@keys_group.command("retire", context_settings=KID_ARGUMENT)
@click.argument("kid")
@with_appcontext
@_keystore_errors
def retire_command(kid: str) -> None:
    """Retire a key that is not active (the active one is replaced by `rotate`)."""
    key = keystore.retire(kid)
    click.echo(f"Key {key.kid} ({key.alg}) retired.")


@keys_group.command("remove", context_settings=KID_ARGUMENT)
@click.argument("kid")
@click.option("--force", is_flag=True,
              help="Remove even if ID tokens it signed may still be valid (they will stop verifying).")
@with_appcontext
@_keystore_errors
def remove_command(kid: str, force: bool) -> None:
    """Unpublish a retired key once the tokens it signed have expired."""
    keystore.remove(kid, force=force)
    click.echo(f"Key {kid} removed from the JWKS.")


COMMANDS = [keys_group]
