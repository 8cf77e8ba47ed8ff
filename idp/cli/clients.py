"""``idp clients``: register, list and remove relying parties.

A confidential client's secret is generated here, printed once, and stored only
as a keyed hash (:meth:`idp.models.Client.set_secret`): it cannot be shown again,
only replaced by registering the client anew.
"""

from __future__ import annotations

import ipaddress
import json
from urllib.parse import urlsplit

import click
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import delete, func, select

from .. import crypto
from ..extensions import db
from ..models import AuthorizationCode, Client, Grant, LoginFlow, Token
from ..oidc.claims import SUPPORTED_SCOPES
from ..oidc.keys import SUPPORTED_ALGS
from .client_auth import apply_auth, auth_options, describe

DEFAULT_SCOPE = "openid profile email"
LOOPBACK_HOSTS = ("localhost",)
NAME_MAX_LENGTH = 200


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    # 127.0.0.1 and ::1, not the whole of 127/8: what the spec names, no surprises.
    return address in (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))


def redirect_uri_problem(uri: str) -> str | None:
    """Why ``uri`` cannot be registered as a redirect URI; None when it can.

    Absolute http(s), no fragment (RFC 6749 §3.1.2), no credentials; plain http
    only towards the loopback interface (RFC 8252 §7.3), https everywhere else.
    """
    max_length = current_app.config.get("IDP_MAX_PARAMETER_LENGTH", 2048)
    if not uri:
        return "is empty"
    if len(uri) > max_length:
        return f"is longer than {max_length} characters (the authorization endpoint would refuse it)"
    if any(c.isspace() for c in uri) or any(ord(c) < 0x21 or ord(c) == 0x7F for c in uri):
        return "contains spaces or control characters"
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "must be an absolute http or https URL"
    if not host:
        return "has no host"
    if "#" in uri:
        return "must not contain a fragment (#...)"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials (user:password@)"
    if parts.scheme == "http" and not _is_loopback(host):
        return "uses http: only https is allowed, except for 127.0.0.1, localhost and [::1]"
    return None


def _check_uris(uris: tuple[str, ...], option: str) -> list[str]:
    checked: list[str] = []
    for uri in uris:
        problem = redirect_uri_problem(uri)
        if problem:
            raise click.BadParameter(f"{uri!r} {problem}.", param_hint=option)
        if uri not in checked:
            checked.append(uri)
    return checked


def _check_scope(scope: str) -> str:
    values = list(dict.fromkeys(scope_to_list(scope or "") or []))
    unknown = [s for s in values if s not in SUPPORTED_SCOPES]
    if unknown:
        raise click.BadParameter(
            f"unsupported scope(s) {', '.join(unknown)}; supported: {', '.join(SUPPORTED_SCOPES)}.",
            param_hint="--scope",
        )
    if "openid" not in values:
        raise click.BadParameter("must include openid.", param_hint="--scope")
    return list_to_scope(values)


def _new_client_id() -> str:
    """128 random bits; never starting with "-", which shells and command lines take for an option."""
    while (client_id := crypto.random_token(16)).startswith("-"):
        pass
    return client_id


@click.group("clients")
def clients_group() -> None:
    """Relying parties (partner sites)."""


@clients_group.command("add")
@click.option("--name", required=True, help="Name shown to users on the login page.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, required=True,
              help="Exact redirect URI; repeat the option for several.")
@click.option("--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True,
              help="Where the client may send users after logout; repeatable.")
@click.option("--public", is_flag=True, help="Public client (no secret; PKCE only), e.g. a mobile app.")
@click.option("--scope", default=DEFAULT_SCOPE, show_default=True,
              help=f"Space-separated scopes the client may ask for, among: {' '.join(SUPPORTED_SCOPES)}.")
@click.option("--alg", type=click.Choice(SUPPORTED_ALGS),
              help="ID token signing algorithm (default: the IDP_SIGNING_ALG setting).")
@click.option("--client-credentials", is_flag=True, help="Also allow the client_credentials grant.")
@auth_options
@click.option("--json", "as_json", is_flag=True, help="Print the registration as a JSON object.")
@with_appcontext
def add_command(name, redirect_uris, post_logout_redirect_uris, public, scope, alg, client_credentials,
                auth_method, auth_signing_alg, jwks_file, jwks_uri, as_json) -> None:
    """Register a client; prints its client_id and, once and only now, its secret."""
    name = (name or "").strip()
    if not name:
        raise click.BadParameter("must not be empty.", param_hint="--name")
    if len(name) > NAME_MAX_LENGTH:
        raise click.BadParameter(f"is longer than {NAME_MAX_LENGTH} characters.", param_hint="--name")
    redirects = _check_uris(redirect_uris, "--redirect-uri")
    post_logout = _check_uris(post_logout_redirect_uris, "--post-logout-redirect-uri")
    scope = _check_scope(scope)
    if public and auth_method not in (None, "none"):
        raise click.UsageError(f"--public and --auth-method {auth_method} contradict each other.")
    if public and client_credentials:
        raise click.UsageError("--client-credentials needs a confidential client: a public client has no secret.")

    grant_types = ["authorization_code", "refresh_token"] + (["client_credentials"] if client_credentials else [])
    client = Client(
        client_id=_new_client_id(),
        name=name,
        redirect_uris=redirects,
        post_logout_redirect_uris=post_logout,
        scope=scope,
        grant_types=grant_types,
        id_token_signed_response_alg=alg,
    )
    secret = apply_auth(client, auth_method="none" if public else auth_method, auth_signing_alg=auth_signing_alg,
                        jwks_file=jwks_file, jwks_uri=jwks_uri, creating=True)
    db.session.add(client)
    db.session.commit()

    if as_json:
        click.echo(json.dumps({
            "client_id": client.client_id,
            "client_secret": secret,
            "client_name": client.name,
            "redirect_uris": client.redirect_uris,
            "post_logout_redirect_uris": client.post_logout_redirect_uris,
            "scope": client.scope,
            "grant_types": client.grant_types,
            **describe(client),
            "id_token_signed_response_alg": client.id_token_signed_response_alg
            or current_app.config["IDP_SIGNING_ALG"],
        }, indent=2))
    else:
        click.echo(f"client_id:     {client.client_id}")
        if secret is not None:
            click.echo(f"client_secret: {secret}")
    if secret is not None:
        click.echo("The client secret is shown only this once; only its hash is stored. "
                   "Hand it over to the partner through a secure channel.", err=True)


@clients_group.command("update", context_settings={"ignore_unknown_options": True})
@click.argument("client_id")
@auth_options
@with_appcontext
def update_command(client_id, auth_method, auth_signing_alg, jwks_file, jwks_uri) -> None:
    """Change how a registered client authenticates (method, algorithm, keys), without re-registering it.

    A new secret is printed, once, only when the new method needs one the provider
    cannot read: every other setting of the client is kept. Other workers and hosts see
    the change within IDP_CLIENT_CACHE_SECONDS.
    """
    client = db.session.scalar(select(Client).where(Client.client_id == client_id))
    if client is None:
        raise click.ClickException(f"No client {client_id}.")
    secret = apply_auth(client, auth_method=auth_method, auth_signing_alg=auth_signing_alg, jwks_file=jwks_file,
                        jwks_uri=jwks_uri, creating=False)
    db.session.commit()
    click.echo(json.dumps({"client_id": client.client_id, **describe(client)}, indent=2))
    if secret is not None:
        click.echo(f"client_secret: {secret}")
        click.echo("The new client secret is shown only this once; the previous one no longer works. "
                   "Hand it over to the partner through a secure channel.", err=True)


@clients_group.command("list")
@with_appcontext
def list_command() -> None:
    """List registered clients."""
    clients = db.session.scalars(select(Client).order_by(Client.created_at, Client.id)).all()
    if not clients:
        click.echo("No clients.")
        return
    rows = [("CLIENT_ID", "NAME", "TYPE", "REDIRECT URIS", "SCOPE")]
    for c in clients:
        rows.append((
            c.client_id,
            c.name,
            "public" if c.is_public else "confidential",
            " ".join(c.redirect_uris or []),
            c.scope,
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(value.ljust(width) for value, width in zip(row, widths)) + "  " + row[-1])


@clients_group.command("remove", context_settings={"ignore_unknown_options": True})
@click.argument("client_id")
@with_appcontext
def remove_command(client_id: str) -> None:
    """Delete a client with its grants, codes, tokens and logins in progress.

    A CLIENT_ID starting with "-" is taken as the argument, not as an option.
    """
    client = db.session.scalar(select(Client).where(Client.client_id == client_id))
    if client is None:
        raise click.ClickException(f"No client {client_id}.")
    pk, name = client.id, client.name
    # The foreign keys cascade on PostgreSQL, but SQLite does not enforce them by
    # default: delete the dependent rows explicitly, children first.
    grant_ids = select(Grant.id).where(Grant.client_id == pk)
    tokens = db.session.scalar(select(func.count()).select_from(Token).where(Token.client_id == pk))
    grants = db.session.scalar(select(func.count()).select_from(Grant).where(Grant.client_id == pk))
    db.session.execute(delete(Token).where((Token.client_id == pk) | Token.grant_id.in_(grant_ids)))
    db.session.execute(delete(AuthorizationCode).where(AuthorizationCode.grant_id.in_(grant_ids)))
    db.session.execute(delete(Grant).where(Grant.client_id == pk))
    db.session.execute(delete(LoginFlow).where(LoginFlow.client_id == pk))
    db.session.execute(delete(Client).where(Client.id == pk))
    db.session.commit()
    click.echo(f"Client {client_id} ({name}) removed, with {grants} grant(s) and {tokens} token(s).")


COMMANDS = [clients_group]
