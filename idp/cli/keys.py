"""``idp keys``: the signing keys' life cycle (next → active → retired → removed).

Keys live in the database, so a rotation done here is seen at once by every
running worker: no restart. The rules (what may be retired or removed, and when)
are those of :mod:`idp.oidc.keys`; its errors are printed as plain messages.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import wraps

import click
from flask.cli import with_appcontext

from ..extensions import db
from ..models import utcnow
from ..oidc import keys as keystore
from .clients import _parse_duration


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


def _age(seconds: float) -> str:
    """``95d``, ``5h``, ``12m``, ``40s``: the largest whole unit."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(max(seconds, 0))}s"


def _verifies(key, horizon: int) -> str:
    """What the key is still good for."""
    if key.status == "active":
        return "signs new tokens; verifies them"
    if key.status == "next":
        return "nothing yet (published; signs after the next rotation)"
    until = (key.retired_at or key.created_at) + timedelta(seconds=horizon)
    if until > utcnow():
        return f"tokens it signed, until {_when(until)}"
    return f"nothing (its tokens have expired): idp keys remove {key.kid}"


@keys_group.command("list")
@with_appcontext
def list_command() -> None:
    """List every key: its age (since it was made) and what it still verifies (times in UTC)."""
    horizon = keystore.verification_horizon()
    now = utcnow()
    rows = [("KID", "ALG", "STATUS", "AGE", "CREATED", "ACTIVATED", "RETIRED", "VERIFIES")]
    for k in keystore.all_keys():
        rows.append((k.kid, k.alg, k.status, _age((now - k.created_at).total_seconds()), _when(k.created_at),
                     _when(k.activated_at), _when(k.retired_at), _verifies(k, horizon)))
    if len(rows) == 1:
        click.echo("No signing keys: run `idp init`.")
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


@keys_group.command("rotate")
@click.option("--alg", type=click.Choice(keystore.SUPPORTED_ALGS),
              help="Rotate only this algorithm's keys (default: all).")
@click.option("--if-older-than", "older_than",
              help="Rotate only the algorithms whose active key has signed for longer than this (90d, 12h...): "
                   "for a daily cron job; otherwise nothing is done (exit status 0 both ways).")
@with_appcontext
@_keystore_errors
def rotate_command(alg: str | None, older_than: str | None) -> None:
    """The next key becomes active, the active one retired (still published); a new next key is made."""
    algs = (alg,) if alg else keystore.SUPPORTED_ALGS
    threshold = _parse_duration(older_than, "--if-older-than")
    keys = keystore.all_keys()
    if threshold is not None:
        active_ages = {k.alg: keystore.key_age(k) for k in keys if k.status == "active"}
        due = tuple(a for a in algs if active_ages.get(a, threshold) >= threshold)
        for name in algs:
            if name not in due:
                click.echo(f"{name}: the active key is {_age(active_ages[name])} old, younger than {older_than}: "
                           "not rotated.")
        if not due:
            click.echo("Nothing to rotate.")
            return
        algs = due
    published = {(k.alg, k.status) for k in keys}
    for name in algs:
        if (name, "next") not in published:
            click.echo(f"Warning: no next {name} key was published; the new active key is brand new, and relying "
                       "parties that cached the JWKS may not know it for a few minutes.", err=True)
    changes = keystore.rotate(algs, older_than=threshold)
    for alg_name, old, new in changes:
        click.echo(f"{alg_name}: {old} retired, {new} active.")
    if not changes:  # another host's job rotated them between our look and our lock
        click.echo("Nothing to rotate: rotated meanwhile elsewhere.")
        return
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
