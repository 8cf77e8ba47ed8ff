"""``idp clients``: register, change, list and remove relying parties.

A confidential client's secret is generated here, printed once, and stored only
as a keyed hash (:meth:`idp.models.Client.set_secret`): it cannot be shown again,
only replaced (``idp clients update --rotate-secret``, the previous one working on
for an overlap period).
"""

from __future__ import annotations

import ipaddress
import json
import re
from urllib.parse import urlsplit

import click
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import delete, func, select

from .. import audit, crypto
from ..extensions import db
from ..models import AuthorizationCode, Client, Grant, LoginFlow, Token
from ..oidc.claims import SUPPORTED_SCOPES
from ..oidc.keys import SUPPORTED_ALGS
from ..oidc import client_auth
from .client_auth import SECRET_METHODS, apply_auth, auth_options, describe

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


PKCE_CHOICES = ("required", "optional")
_DURATION = re.compile(r"(\d{1,9})([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _parse_duration(value: str | None, option: str) -> int | None:
    """``7d``, ``12h``, ``30m``, ``90s`` or a number of seconds; None when not given."""
    if value is None:
        return None
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        raise click.BadParameter("must be a duration such as 7d, 12h, 30m, 90s or 0.", param_hint=option)
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise click.BadParameter("must not be empty.", param_hint="--name")
    if len(name) > NAME_MAX_LENGTH:
        raise click.BadParameter(f"is longer than {NAME_MAX_LENGTH} characters.", param_hint="--name")
    return name


def _check_pkce(pkce: str | None, public: bool) -> None:
    if pkce == "optional" and public:
        raise click.UsageError("--pkce optional is for confidential clients only: a public client always needs "
                               "PKCE (RFC 9700 §2.1.1), since nothing else binds its code to the browser.")


def _registration(client: Client, secret: str | None) -> dict:
    return {
        "client_id": client.client_id,
        "client_secret": secret,
        "client_name": client.name,
        "logo_uri": client.logo_uri,
        "client_uri": client.client_uri,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "scope": client.scope,
        "grant_types": client.grant_types,
        **describe(client),
        "id_token_signed_response_alg": client.id_token_signed_response_alg
        or current_app.config["IDP_SIGNING_ALG"],
        "pkce": "required" if client.needs_pkce else "optional",
        "cors": client.cors_allowed,
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "backchannel_logout_session_required": bool(client.backchannel_logout_session_required),
        "userinfo_signed_response_alg": client.userinfo_signed_response_alg,
    }
# --- Branding: what the login pages show of the partner site (issue 11) ---------------------

def branding_options(command):
    """``--logo-uri`` and ``--client-uri`` (RFC 7591 ``logo_uri``, ``client_uri``), for add and update."""
    command = click.option("--client-uri", "client_uri", default=None,
                           help="The partner site's home page, linked from the login pages (https; http only to "
                                "127.0.0.1, localhost, [::1]). An empty value removes it.")(command)
    return click.option("--logo-uri", "logo_uri", default=None,
                        help="The partner site's logo, shown on the login pages (https; http only to 127.0.0.1, "
                             "localhost, [::1]). An empty value removes it.")(command)


def apply_branding(client: Client, logo_uri: str | None, client_uri: str | None) -> list[str]:
    """Set what the options gave (None: unchanged, empty: removed); the URLs follow the redirect URI rules."""
    changed = []
    for attr, value, option in (("logo_uri", logo_uri, "--logo-uri"), ("client_uri", client_uri, "--client-uri")):
        if value is None:
            continue
        if value != "":
            problem = redirect_uri_problem(value)
            if problem:
                raise click.BadParameter(f"{value!r} {problem}.", param_hint=option)
        setattr(client, attr, value or None)
        changed.append(attr)
    return changed


# --- OIDC Back-Channel Logout 1.0: the client's logout endpoint ----------------------------

def backchannel_options(command):
    """``--backchannel-logout-uri`` and ``--backchannel-logout-session-required``, for add and update."""
    command = click.option("--backchannel-logout-session-required/--no-backchannel-logout-session-required",
                           "backchannel_session_required", default=None,
                           help="The client needs sid in its logout tokens "
                                "(every logout token here carries sid and sub).")(command)
    return click.option("--backchannel-logout-uri", "backchannel_logout_uri", default=None,
                        help="Where logout tokens are POSTed when a session the client took part in ends "
                             "(https; http only to 127.0.0.1, localhost, [::1]). An empty value removes it.")(command)


def apply_backchannel(client: Client, uri: str | None, session_required: bool | None) -> None:
    """Set what the options gave (None: unchanged); the URI follows the redirect URI rules."""
    if uri is not None:
        if uri == "":
            client.backchannel_logout_uri = None
        else:
            problem = redirect_uri_problem(uri)
            if problem:
                raise click.BadParameter(f"{uri!r} {problem}.", param_hint="--backchannel-logout-uri")
            client.backchannel_logout_uri = uri
    if session_required is not None:
        client.backchannel_logout_session_required = session_required


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
@click.option("--pkce", type=click.Choice(PKCE_CHOICES), default="required", show_default=True,
              help="optional: a confidential client may log people in without PKCE, and must then send a nonce.")
@click.option("--cors/--no-cors", default=False,
              help="Confidential client: let the origins of its redirect URIs call /token, /userinfo and /revoke "
                   "from a browser (public clients always may).")
@backchannel_options
@branding_options
@click.option("--userinfo-signed-response-alg", "userinfo_alg", type=click.Choice(SUPPORTED_ALGS),
              help="UserInfo as a JWT signed with this algorithm (OIDC Core 5.3.2); default plain JSON.")
@auth_options
@click.option("--json", "as_json", is_flag=True, help="Print the registration as a JSON object.")
@with_appcontext
def add_command(name, redirect_uris, post_logout_redirect_uris, public, scope, alg, client_credentials,
                pkce, cors, backchannel_logout_uri, backchannel_session_required, logo_uri, client_uri, userinfo_alg,
                auth_method, auth_signing_alg, jwks_file, jwks_uri, as_json) -> None:
    """Register a client; prints its client_id and, once and only now, its secret."""
    name = _check_name(name)
    _check_pkce(pkce, public)
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
        pkce_required=pkce == "required",
        cors=cors,
        userinfo_signed_response_alg=userinfo_alg,
    )
    apply_backchannel(client, backchannel_logout_uri, backchannel_session_required)
    apply_branding(client, logo_uri, client_uri)
    secret = apply_auth(client, auth_method="none" if public else auth_method, auth_signing_alg=auth_signing_alg,
                        jwks_file=jwks_file, jwks_uri=jwks_uri, creating=True)
    db.session.add(client)
    audit.record("client_added", client_id=client.client_id, detail={"name": client.name})
    db.session.commit()

    if as_json:
        click.echo(json.dumps(_registration(client, secret), indent=2))
    else:
        click.echo(f"client_id:     {client.client_id}")
        if secret is not None:
            click.echo(f"client_secret: {secret}")
    if secret is not None:
        click.echo("The client secret is shown only this once; only its hash is stored. "
                   "Hand it over to the partner through a secure channel.", err=True)


@clients_group.command("update", context_settings={"ignore_unknown_options": True})
@click.argument("client_id")
@click.option("--name", help="New name shown to users.")
@click.option("--redirect-uri", "redirect_uris", multiple=True,
              help="Replace the redirect URIs (repeat for several; exact strings).")
@click.option("--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True,
              help="Replace the post-logout redirect URIs (repeatable).")
@click.option("--no-post-logout-redirect-uris", is_flag=True, help="Remove every post-logout redirect URI.")
@click.option("--scope", help=f"Replace the scopes, among: {' '.join(SUPPORTED_SCOPES)}.")
@click.option("--alg", type=click.Choice([*SUPPORTED_ALGS, "default"]),
              help="ID token signing algorithm; default: back to the IDP_SIGNING_ALG setting.")
@click.option("--client-credentials/--no-client-credentials", default=None,
              help="Allow or stop the client_credentials grant.")
@click.option("--pkce", type=click.Choice(PKCE_CHOICES), help="PKCE required, or optional (confidential only).")
@click.option("--cors/--no-cors", default=None, help="Browser calls from its redirect URIs' origins "
              "(confidential clients; public clients always may).")
@click.option("--rotate-secret", is_flag=True, help="New client secret, printed once; the previous one keeps "
              "working for the overlap period.")
@click.option("--overlap", help="With --rotate-secret: how long the previous secret keeps working (7d, 12h, 30m, "
              "0 for not at all; default: the IDP_CLIENT_SECRET_OVERLAP setting).")
@backchannel_options
@branding_options
@click.option("--userinfo-signed-response-alg", "userinfo_alg", type=click.Choice([*SUPPORTED_ALGS, "default"]),
              help="UserInfo as a JWT signed with this algorithm (OIDC Core 5.3.2); default: back to plain JSON.")
@auth_options
@click.option("--json", "as_json", is_flag=True, help="Print the registration as a JSON object.")
@with_appcontext
def update_command(client_id, name, redirect_uris, post_logout_redirect_uris, no_post_logout_redirect_uris, scope,
                   alg, client_credentials, pkce, cors, rotate_secret, overlap, backchannel_logout_uri,
                   backchannel_session_required, logo_uri, client_uri, userinfo_alg, auth_method, auth_signing_alg, jwks_file, jwks_uri,
                   as_json) -> None:
    """Change a client's settings in place (its client_id, grants and tokens stay).

    Only the options given change. Running workers see the change within
    IDP_CLIENT_CACHE_SECONDS on the back channel, at once on the authorization endpoint.
    """
    client = db.session.scalar(select(Client).where(Client.client_id == client_id))
    if client is None:
        raise click.ClickException(f"No client {client_id}.")
    overlap_seconds = _parse_duration(overlap, "--overlap")
    if overlap_seconds is not None and not rotate_secret:
        raise click.UsageError("--overlap goes with --rotate-secret.")
    if post_logout_redirect_uris and no_post_logout_redirect_uris:
        raise click.UsageError("--post-logout-redirect-uri and --no-post-logout-redirect-uris contradict each other.")
    _check_pkce(pkce, client.is_public)
    if client.is_public and rotate_secret:
        raise click.UsageError("--rotate-secret: a public client has no secret.")
    if client.is_public and client_credentials:
        raise click.UsageError("--client-credentials needs a confidential client: a public client has no secret.")
    if client.is_public and cors is False:
        raise click.UsageError("--no-cors: a public client's origins are always allowed (it runs in a browser).")

    changed: list[str] = []
    if name is not None:
        client.name = _check_name(name)
        changed.append("name")
    if redirect_uris:
        client.redirect_uris = _check_uris(redirect_uris, "--redirect-uri")
        changed.append("redirect_uris")
    if post_logout_redirect_uris or no_post_logout_redirect_uris:
        client.post_logout_redirect_uris = _check_uris(post_logout_redirect_uris, "--post-logout-redirect-uri")
        changed.append("post_logout_redirect_uris")
    if scope is not None:
        client.scope = _check_scope(scope)
        changed.append("scope")
    if alg is not None:
        client.id_token_signed_response_alg = None if alg == "default" else alg
        changed.append("id_token_signed_response_alg")
    if userinfo_alg is not None:
        client.userinfo_signed_response_alg = None if userinfo_alg == "default" else userinfo_alg
        changed.append("userinfo_signed_response_alg")
    if client_credentials is not None:
        kept = [g for g in (client.grant_types or []) if g != "client_credentials"]
        client.grant_types = kept + (["client_credentials"] if client_credentials else [])
        changed.append("grant_types")
    if pkce is not None:
        client.pkce_required = pkce == "required"
        changed.append("pkce")
    if cors is not None:
        client.cors = cors
        changed.append("cors")
    if backchannel_logout_uri is not None or backchannel_session_required is not None:
        apply_backchannel(client, backchannel_logout_uri, backchannel_session_required)
        changed.append("backchannel_logout")
    changed += apply_branding(client, logo_uri, client_uri)
    secret = None
    if auth_method is not None or auth_signing_alg is not None or jwks_file or jwks_uri:
        # A new secret only when the new method needs one the provider cannot read.
        secret = apply_auth(client, auth_method=auth_method, auth_signing_alg=auth_signing_alg, jwks_file=jwks_file,
                            jwks_uri=jwks_uri, creating=False)
        changed.append("token_endpoint_auth_method")
        if secret is not None and rotate_secret:
            raise click.UsageError("--rotate-secret: the new authentication method already gets a new secret.")
    if rotate_secret:
        if client.auth_methods[0] not in SECRET_METHODS:
            raise click.UsageError(f"--rotate-secret: a {client.auth_methods[0]} client has no secret.")
        secret = crypto.random_token(32)
        if overlap_seconds is None:
            overlap_seconds = current_app.config["IDP_CLIENT_SECRET_OVERLAP"]
        if client.auth_methods[0] == "client_secret_jwt":
            # The HMAC key of its assertions is the secret itself: it cannot have an overlap.
            overlap_seconds = 0
            client.client_secret_encrypted = client_auth.seal_secret(client.client_id, secret)
        client.rotate_secret(secret, overlap_seconds)
        changed.append("client_secret")
    if not changed:
        raise click.UsageError("Nothing to change: give at least one option (see --help).")
    # The names of what changed, never a value (a new secret is only "client_secret").
    audit.record("client_changed", client_id=client.client_id, detail={"changed": changed})
    db.session.commit()

    if as_json:
        click.echo(json.dumps(_registration(client, secret), indent=2))
    else:
        click.echo(f"Client {client.client_id} updated: {', '.join(changed)}.")
        if secret is not None:
            click.echo(f"client_secret: {secret}")
    if secret is not None:
        until = client.previous_secret_expires_at
        click.echo("The new client secret is shown only this once. "
                   + (f"The previous secret keeps working until {until:%Y-%m-%d %H:%M} UTC."
                      if until is not None else "The previous secret no longer works."), err=True)


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
    audit.record("client_removed", client_id=client_id, detail={"name": name, "grants": grants, "tokens": tokens})
    db.session.commit()
    click.echo(f"Client {client_id} ({name}) removed, with {grants} grant(s) and {tokens} token(s).")


COMMANDS = [clients_group]
