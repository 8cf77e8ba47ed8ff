"""How a client authenticates, as ``idp clients add`` and ``idp clients update`` register it.

Options shared by both commands (:func:`auth_options`) and the one place that sets a
client's method, keys and secret consistently (:func:`apply_auth`):

* ``client_secret_basic`` / ``client_secret_post``: a generated secret, stored as a
  keyed hash only;
* ``client_secret_jwt``: a generated secret, stored as a keyed hash *and* encrypted
  under the key-encryption secret (an HS256 assertion can only be checked with the
  secret itself, see :mod:`idp.oidc.client_auth`);
* ``private_key_jwt``: no secret at all; the client's public keys, inline (``--jwks
  FILE``) or fetched (``--jwks-uri URL``);
* ``none``: a public client, no secret.
"""

from __future__ import annotations

import json

import click

from .. import crypto
from ..models.clients import AUTH_METHODS, JWT_AUTH_METHODS
from ..oidc import client_auth

SECRET_METHODS = ("client_secret_basic", "client_secret_post", "client_secret_jwt")


def auth_options(command):
    """``--auth-method``, ``--auth-signing-alg``, ``--jwks``, ``--jwks-uri``."""
    options = [
        click.option("--auth-method", type=click.Choice(AUTH_METHODS),
                     help="How the client authenticates at /token, /revoke and /introspect; only this method is "
                          "accepted. Default: client_secret_basic (none with --public; private_key_jwt with "
                          "--jwks or --jwks-uri)."),
        click.option("--auth-signing-alg", type=click.Choice(client_auth.ALL_SIGNING_ALGS),
                     help="alg of the client's assertions: RS256 (default), PS256 or ES256 for private_key_jwt; "
                          "HS256 for client_secret_jwt."),
        click.option("--jwks", "jwks_file", type=click.File("r"),
                     help="private_key_jwt: a file holding the client's public keys (a JWK Set).", ),
        click.option("--jwks-uri", help="private_key_jwt: https URL where the client publishes its public keys."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _read_jwks(jwks_file) -> dict:
    try:
        data = json.load(jwks_file)
    except ValueError as error:
        raise click.BadParameter(f"not JSON ({error}).", param_hint="--jwks") from None
    try:
        return client_auth.public_key_set(data)
    except ValueError as error:
        raise click.BadParameter(f"{error}.", param_hint="--jwks") from None


def apply_auth(client, *, auth_method: str | None, auth_signing_alg: str | None, jwks_file, jwks_uri: str | None,
               creating: bool) -> str | None:
    """Set the client's authentication method, algorithm, keys and secret; returns a new secret to show, if any.

    On update, only what is given changes; a new secret is generated only when the new
    method needs one the provider cannot read (changing to client_secret_jwt, or from
    private_key_jwt or none to a secret method).
    """
    current = None if creating else client.auth_methods[0]
    if auth_method is None:
        auth_method = "private_key_jwt" if (jwks_file or jwks_uri) else current or "client_secret_basic"
    if jwks_file and jwks_uri:
        raise click.UsageError("Give --jwks or --jwks-uri, not both.")
    if (jwks_file or jwks_uri) and auth_method != "private_key_jwt":
        raise click.UsageError("--jwks and --jwks-uri are for --auth-method private_key_jwt.")
    if auth_method == "none" and "client_credentials" in (client.grant_types or []):
        raise click.UsageError("--client-credentials needs a confidential client: a public client has no secret.")

    algs = client_auth.SIGNING_ALGS.get(auth_method, ())
    if auth_signing_alg is not None and auth_signing_alg not in algs:
        raise click.BadParameter(f"{auth_method} takes none of {auth_signing_alg}; "
                                 f"{'one of ' + ', '.join(algs) if algs else 'no algorithm'}.",
                                 param_hint="--auth-signing-alg")

    if auth_method == "private_key_jwt":
        if jwks_file:
            client.jwks, client.jwks_uri = _read_jwks(jwks_file), None
        elif jwks_uri:
            problem = client_auth.jwks_uri_problem(jwks_uri)
            if problem:
                raise click.BadParameter(f"{jwks_uri!r} {problem}.", param_hint="--jwks-uri")
            client.jwks, client.jwks_uri = None, jwks_uri
        elif not (client.jwks or client.jwks_uri):
            raise click.UsageError("private_key_jwt needs the client's public keys: --jwks FILE or --jwks-uri URL.")
    else:
        client.jwks, client.jwks_uri = None, None

    alg = auth_signing_alg or (client.token_endpoint_auth_signing_alg if current == auth_method else None)
    if algs and alg is None:
        alg = algs[0]
        if client.jwks and not _usable(client.jwks, alg):
            alg = next((a for a in algs if _usable(client.jwks, a)), alg)
    if client.jwks and alg is not None and not _usable(client.jwks, alg):
        raise click.BadParameter(f"no key of the JWK Set can verify {alg} (RS256/PS256: RSA; ES256: EC P-256).",
                                 param_hint="--jwks")
    client.token_endpoint_auth_method = auth_method
    client.token_endpoint_auth_signing_alg = alg if algs else None

    secret = None
    if auth_method not in SECRET_METHODS:
        client.client_secret_hash = None
    elif client.client_secret_hash is None or (auth_method == "client_secret_jwt" and current != auth_method):
        secret = crypto.random_token(32)
        client.set_secret(secret)
    if auth_method == "client_secret_jwt":
        if secret is not None:
            client.client_secret_encrypted = client_auth.seal_secret(client.client_id, secret)
    else:
        client.client_secret_encrypted = None
    return secret


def _usable(jwks: dict, alg: str) -> bool:
    try:
        client_auth.check_keys_for_alg(jwks, alg)
    except ValueError:
        return False
    return True


def describe(client) -> dict:
    """The client's authentication, as ``--json`` prints it (RFC 7591 names)."""
    method = client.auth_methods[0]
    data = {"token_endpoint_auth_method": method}
    if method in JWT_AUTH_METHODS:
        data["token_endpoint_auth_signing_alg"] = client.token_endpoint_auth_signing_alg
    if client.jwks_uri:
        data["jwks_uri"] = client.jwks_uri
    elif client.jwks:
        data["jwks"] = client.jwks
    return data
