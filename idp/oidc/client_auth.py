"""Signed client authentication: ``private_key_jwt`` and ``client_secret_jwt`` (RFC 7523 §2.2 and §3, OIDC Core §9).

A partner's gateway proves who it is with a short-lived JWT it signs itself (the
*client assertion*), sent as ``client_assertion`` with ``client_assertion_type`` =
``urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` at ``/token``, ``/revoke``
and ``/introspect``. Authlib parses it and checks the signature and the claims
(:class:`~authlib.oauth2.rfc7523.JWTBearerClientAssertion`); this module is the
provider's policy, plugged in by subclassing it and registering the two methods on
the authorization server (:mod:`idp.oidc.server`):

* the client is the one registered for this method (``token_endpoint_auth_method``),
  and the assertion's ``alg`` is the one it registered
  (``token_endpoint_auth_signing_alg``): RS256, PS256 or ES256 with its public keys
  for ``private_key_jwt``, HS256 with its secret for ``client_secret_jwt``, never
  ``none``, never one for the other (no algorithm confusion);
* ``iss`` = ``sub`` = the client_id; ``aud`` is the URL of the endpoint called, the
  token endpoint's (OIDC Core §9) or the issuer (RFC 7523 §3); ``exp`` is required, and neither ``exp - iat``
  nor ``exp - now`` may exceed ``IDP_CLIENT_ASSERTION_MAX_LIFETIME`` (300 s): an
  assertion is made for one request, not kept as a long-lived password;
* ``jti`` is required and accepted once: ONE ``INSERT … ON CONFLICT DO NOTHING`` into
  ``used_client_assertions`` (unique on client and ``jti``) runs after the signature
  and the claims are verified and before the assertion is accepted; whichever of
  several parallel requests inserts the row goes on, every other is refused, on any
  worker or host. The row is written in the request's transaction (no statement
  more than that INSERT); the endpoints that would not commit otherwise call
  :func:`commit_used_assertion`.

The client's public keys come from its registration (``jwks``, inline) or from its
``jwks_uri``, fetched with a short timeout, over https only, kept per process for
``IDP_CLIENT_JWKS_CACHE_SECONDS``, fetched again at once when an assertion names a
``kid`` not in them (the client rotated its keys), but never more often than
``IDP_CLIENT_JWKS_MIN_INTERVAL``. A jwks_uri that does not answer refuses the client
(``invalid_client``), never a 500, and the next fetch allowed recovers.

The secret of a ``client_secret_jwt`` client must be readable to check an HMAC: for
those clients only, it is kept encrypted under the key-encryption secret that
protects the signing keys (:func:`idp.oidc.keys.seal`), bound to the client_id; every
other client's secret stays a keyed hash only.
"""

from __future__ import annotations

import abc

import ipaddress
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from urllib.parse import urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.oauth2.base import invalid_error_characters
from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import current_app, g, request as flask_request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey
from sqlalchemy import bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..models import UsedAssertion
from ..models.assertions import JTI_MAX_LENGTH
from . import keys, store

log = logging.getLogger(__name__)

#: The ``alg`` values each signed method may register (the first is the default).
SIGNING_ALGS = {
    "private_key_jwt": ("RS256", "PS256", "ES256"),
    "client_secret_jwt": ("HS256",),
}
ALL_SIGNING_ALGS = tuple(alg for algs in SIGNING_ALGS.values() for alg in algs)
#: The back-channel endpoints that accept client assertions, by path (their URL is an accepted ``aud``).
ASSERTION_ENDPOINTS = ("/token", "/revoke", "/introspect")


def _cfg(name: str):
    return current_app.config[f"IDP_{name}"]


def _refusal(description: str) -> InvalidClientError:
    """``invalid_client`` with a description that is safe to send (Authlib refuses quotes and non-ASCII)."""
    if invalid_error_characters(description):
        description = "Invalid client assertion."
    return InvalidClientError(description=description)


class _NotThisMethod(Exception):
    """The assertion's client is registered for the other signed method: let that one try."""


# --- The two methods --------------------------------------------------------------------------

class ClientAssertionAuth(JWTBearerClientAssertion, abc.ABC):
    """Authlib's client assertion check, with the provider's keys, rules and single-use ``jti``."""

    def __init__(self):
        super().__init__(validate_jti=True)

    # Authlib reads ``self.leeway``; it is a setting, read per request.
    @property
    def leeway(self) -> int:
        return _cfg("CLIENT_ASSERTION_LEEWAY")

    @leeway.setter
    def leeway(self, value) -> None:  # Authlib's __init__ sets its default; the setting wins
        pass

    def __call__(self, query_client, request):
        try:
            return super().__call__(query_client, request)
        except _NotThisMethod:
            return None

    def get_audiences(self) -> list[str]:
        """The endpoint called, the token endpoint (what OIDC Core §9 names) or the issuer."""
        issuer = _cfg("ISSUER")
        audiences = [issuer + "/token", issuer]
        if flask_request.path in ASSERTION_ENDPOINTS and flask_request.path != "/token":
            audiences.insert(0, issuer + flask_request.path)
        return audiences

    def resolve_client_public_key(self, client):
        if self.CLIENT_AUTH_METHOD not in client.auth_methods:
            raise _NotThisMethod()
        alg = client.token_endpoint_auth_signing_alg
        if alg not in SIGNING_ALGS[self.CLIENT_AUTH_METHOD]:
            raise _refusal("The client has no signing algorithm registered for this method.")
        return AssertionKey(self, client, alg)

    def process_assertion_claims(self, assertion, resolve_key: "AssertionKey"):
        # Only the client's registered algorithm (joserfc would otherwise allow any "recommended" one,
        # and not PS256); the key chooser refuses any other ``alg`` before a key is even looked at.
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=[resolve_key.alg])
        except JoseError as error:
            log.debug("client assertion refused: %r", error)
            raise _refusal(f"Invalid client assertion: {error.description or error.error}") from None
        except ValueError:  # joserfc: no usable key
            raise _refusal("No key of the client matches the assertion.") from None
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims) -> None:
        limit, leeway = _cfg("CLIENT_ASSERTION_MAX_LIFETIME"), self.leeway
        exp, iat = claims.get("exp"), claims.get("iat")
        if _numeric(exp):
            if exp - time.time() > limit + leeway:
                raise _refusal(f"The assertion expires too late: at most {limit} s ahead.")
            if _numeric(iat) and exp - iat > limit:
                raise _refusal(f"The assertion lives too long: at most {limit} s from iat to exp.")
        try:
            super().verify_claims(claims)  # iss, sub, aud, exp (required), nbf, iat; then jti, once
        except ValueError:  # a description Authlib cannot send
            raise _refusal("Invalid client assertion claims.") from None

    def validate_jti(self, claims, jti) -> bool:
        """Record the assertion as used: ONE atomic INSERT; False when it was already."""
        if not isinstance(jti, str) or not jti or len(jti) > JTI_MAX_LENGTH:
            raise _refusal(f"Invalid 'jti': a string of 1 to {JTI_MAX_LENGTH} characters.")
        conn = store.connection()
        expires_at = datetime.fromtimestamp(int(claims["exp"]) + self.leeway + 1, timezone.utc).replace(tzinfo=None)
        result = conn.execute(_insert_used(conn.dialect.name),
                              {"b_client_id": claims["sub"], "b_jti": jti, "b_expires_at": expires_at})
        g.idp_assertion_used = True
        return result.first() is not None

    @abc.abstractmethod
    def key_for(self, client, header: dict):
        """The key that verifies this client's assertion (its public key, or its secret)."""


class PrivateKeyJWT(ClientAssertionAuth):
    """``private_key_jwt``: signed with one of the client's private keys (RS256, PS256 or ES256)."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def key_for(self, client, header: dict):
        kid, alg = header.get("kid"), header["alg"]
        if kid is not None and not isinstance(kid, str):
            raise _refusal("Invalid 'kid'.")
        if client.jwks_uri:
            return remote_key(client, kid, alg)
        key = pick_key(inline_key_set(json.dumps(client.jwks or {"keys": []}, sort_keys=True)), kid, alg)
        if key is None:
            raise _refusal("No registered key of the client matches the assertion's kid and alg.")
        return key


class ClientSecretJWT(ClientAssertionAuth):
    """``client_secret_jwt``: an HMAC (HS256) under the client's secret, kept encrypted for that."""

    CLIENT_AUTH_METHOD = "client_secret_jwt"

    def key_for(self, client, header: dict):
        if not client.client_secret_encrypted:
            raise _refusal("The client has no secret for client_secret_jwt.")
        return OctKey.import_key(open_secret(client.client_id, client.client_secret_encrypted))


class AssertionKey:
    """The key an assertion is verified with, chosen from its header (joserfc's key callable).

    Refuses any ``alg`` but the one the client registered before looking at a key.
    """

    def __init__(self, method: ClientAssertionAuth, client, alg: str):
        self.method, self.client, self.alg = method, client, alg

    def __call__(self, obj):
        header = obj.headers()
        if header.get("alg") != self.alg:
            raise _refusal("The assertion is not signed with the algorithm registered for the client.")
        return self.method.key_for(self.client, header)


def _numeric(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --- The single-use record --------------------------------------------------------------------

_used = UsedAssertion.__table__
_inserts: dict[str, object] = {}


def _insert_used(dialect: str):
    """``INSERT … ON CONFLICT (client_id, jti) DO NOTHING RETURNING jti``, built once per dialect."""
    statement = _inserts.get(dialect)
    if statement is None:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = _inserts[dialect] = (
            insert(_used)
            .values(client_id=bindparam("b_client_id"), jti=bindparam("b_jti"),
                    expires_at=bindparam("b_expires_at"))
            .on_conflict_do_nothing(index_elements=["client_id", "jti"])
            .returning(_used.c.jti)  # a row back: inserted now; none: it was already (rowcount is not kept)
        )
    return statement


def commit_used_assertion() -> None:
    """Commit the ``jti`` this request recorded, on an endpoint that commits nothing otherwise.

    Revocation of an unknown token and introspection (on SQLite; PostgreSQL runs it in
    autocommit mode) write nothing else: without this the row would be rolled back and
    the assertion usable again.
    """
    if g.pop("idp_assertion_used", False):
        store.commit()


# --- Keys -------------------------------------------------------------------------------------

def usable_for(key, alg: str) -> bool:
    """Whether a public JWK can verify ``alg``: its type (and curve), its ``use`` and ``alg`` if given."""
    if key.is_private:
        return False
    if alg.startswith("ES"):
        if key.key_type != "EC" or key.get("crv") != "P-256":
            return False
    elif key.key_type != "RSA":
        return False
    return key.get("use") in (None, "sig") and key.get("alg") in (None, alg)


def pick_key(key_set: KeySet, kid: str | None, alg: str):
    """The key named by ``kid``; without a ``kid``, the only key usable for ``alg`` (None otherwise)."""
    candidates = [k for k in key_set.keys if usable_for(k, alg)]
    if kid is not None:
        candidates = [k for k in candidates if k.kid == kid]
    return candidates[0] if len(candidates) == 1 else None


@lru_cache(maxsize=256)
def inline_key_set(jwks_json: str) -> KeySet:
    """A registered JWK Set, parsed once per process (keyed by its JSON)."""
    return KeySet.import_key_set(json.loads(jwks_json))


def public_key_set(jwks) -> dict:
    """A client's JWK Set as registered: public RSA or P-256 EC signing keys, each with a distinct ``kid``.

    Raises ValueError with the reason otherwise (private parts included, symmetric keys, …).
    """
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ValueError('not a JWK Set: {"keys": [...]} with at least one key')
    kids = []
    for jwk in jwks["keys"]:
        if not isinstance(jwk, dict):
            raise ValueError("a key is not a JSON object")
        if jwk.get("kty") not in ("RSA", "EC"):
            raise ValueError(f"key type {jwk.get('kty')!r}: only RSA and EC public keys")
        if any(member in jwk for member in ("d", "p", "q", "dp", "dq", "qi", "k")):
            raise ValueError("a key holds private parts: register the public keys only")
        kids.append(jwk.get("kid"))
    if len(kids) > 1 and (None in kids or len(set(kids)) != len(kids)):
        raise ValueError("several keys need each a distinct kid")
    try:
        KeySet.import_key_set(jwks)
    except (JoseError, ValueError, TypeError) as error:
        raise ValueError(f"unreadable key ({error})") from None
    return {"keys": [dict(jwk) for jwk in jwks["keys"]]}


def check_keys_for_alg(jwks: dict, alg: str) -> None:
    """Raise ValueError unless at least one key of ``jwks`` can verify ``alg``."""
    if not any(usable_for(k, alg) for k in KeySet.import_key_set(jwks).keys):
        raise ValueError(f"no key usable for {alg} (RS256/PS256: RSA keys; ES256: EC P-256 keys)")


# --- client_secret_jwt: the secret, encrypted ----------------------------------------------------

def _secret_binding(client_id: str) -> str:
    return f"client-secret-jwt:{client_id}"


def seal_secret(client_id: str, secret: str) -> bytes:
    """The secret of a ``client_secret_jwt`` client as stored: AES-256-GCM, bound to the client."""
    return keys.seal(_secret_binding(client_id), secret.encode())


def open_secret(client_id: str, blob: bytes) -> str:
    try:
        return keys.unseal(_secret_binding(client_id), bytes(blob)).decode()
    except Exception:  # InvalidTag: moved from another row, or another key-encryption secret
        log.warning("client %s: its client_secret_jwt secret cannot be decrypted", client_id)
        raise _refusal("The client's secret cannot be read.") from None


# --- jwks_uri ---------------------------------------------------------------------------------

def jwks_uri_problem(uri: str) -> str | None:
    """Why ``uri`` cannot be a client's jwks_uri; None when it can (https; http to loopback in tests/demo)."""
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as error:
        return f"is not a valid URL ({error})"
    if len(uri) > 2048 or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in uri):
        return "is too long or contains spaces or control characters"
    if not host or parts.username is not None or "#" in uri:
        return "must be an absolute URL with a host, no credentials and no fragment"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and _http_loopback_allowed() and _is_loopback(host):
        return None
    return "must be https (plain http only towards the loopback interface, with IDP_CLIENT_JWKS_HTTP_LOOPBACK in tests)"


def _http_loopback_allowed() -> bool:
    return bool(_cfg("CLIENT_JWKS_HTTP_LOOPBACK") and (_cfg("TESTING") or _cfg("DEMO")))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host) in (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
    except ValueError:
        return False


@dataclass
class _Fetched:
    uri: str
    key_set: KeySet | None  # None: never fetched successfully
    good_until: float  # monotonic: trusted until then
    attempted_at: float  # monotonic: the last fetch, successful or not


_fetch_lock = threading.Lock()


def remote_key(client, kid: str | None, alg: str):
    """The key of ``client``'s jwks_uri for this ``kid`` and ``alg``; fetches as the settings allow."""
    cache = current_app.extensions.setdefault("idp_client_jwks", {})
    entry = cache.get(client.client_id)
    if entry is not None and entry.uri != client.jwks_uri:
        entry = None  # the registration changed: start again
    if not _trusted(entry):
        entry = _refresh(cache, client, entry)
    key = pick_key(entry.key_set, kid, alg) if _trusted(entry) else None
    if key is None and _trusted(entry):
        # An unknown kid: the client may have rotated its keys. Fetch again, unless too soon.
        entry = _refresh(cache, client, entry)
        key = pick_key(entry.key_set, kid, alg) if _trusted(entry) else None
    if key is not None:
        return key
    if not _trusted(entry):
        raise _refusal("The client's keys could not be fetched from its jwks_uri.")
    raise _refusal("No key of the client's jwks_uri matches the assertion's kid and alg.")


def _trusted(entry: "_Fetched | None") -> bool:
    return entry is not None and entry.key_set is not None and entry.good_until > time.monotonic()


def _refresh(cache: dict, client, entry: _Fetched | None) -> _Fetched:
    """Fetch the client's jwks_uri unless a fetch happened less than the minimum interval ago.

    One fetch at a time per process: threads that waited for it use its result. A failed
    fetch keeps the keys fetched before while they are still trusted.
    """
    with _fetch_lock:
        latest = cache.get(client.client_id)
        if latest is not None and latest.uri == client.jwks_uri:
            entry = latest
        now = time.monotonic()
        if entry is not None and now - entry.attempted_at < _cfg("CLIENT_JWKS_MIN_INTERVAL"):
            return entry
        fetched = _fetch(client.client_id, client.jwks_uri)
        now = time.monotonic()
        if fetched is not None:
            entry = _Fetched(client.jwks_uri, fetched, now + _cfg("CLIENT_JWKS_CACHE_SECONDS"), now)
        elif entry is not None:
            entry = _Fetched(entry.uri, entry.key_set, entry.good_until, now)
        else:
            entry = _Fetched(client.jwks_uri, None, now, now)
        cache[client.client_id] = entry
        return entry


def _fetch(client_id: str, uri: str) -> KeySet | None:
    """The JWK Set at ``uri``: https (or loopback http in tests), no redirect, short timeout, bounded size."""
    problem = jwks_uri_problem(uri)
    if problem:
        log.warning("client %s: jwks_uri refused: it %s", client_id, problem)
        return None
    timeout = _cfg("CLIENT_JWKS_FETCH_TIMEOUT")
    limit = _cfg("CLIENT_JWKS_MAX_BYTES")
    try:
        with requests.get(uri, timeout=(timeout, timeout), allow_redirects=False, stream=True,
                          headers={"Accept": "application/json, application/jwk-set+json"}) as response:
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            body = response.raw.read(limit + 1, decode_content=True)
            if len(body) > limit:
                raise ValueError(f"larger than {limit} bytes")
        return KeySet.import_key_set(public_key_set(json.loads(body)))
    except (requests.RequestException, ValueError, TypeError, JoseError, AuthlibBaseError) as error:
        host = urlsplit(uri).hostname
        log.warning("client %s: jwks_uri on %s could not be fetched: %s", client_id, host,
                    error.__class__.__name__ if isinstance(error, requests.RequestException) else error)
        return None
    except Exception as error:  # urllib3 errors on a broken connection mid-body, and the like
        log.warning("client %s: jwks_uri could not be read: %s", client_id, error.__class__.__name__)
        return None


# --- Registration on the server ---------------------------------------------------------------

def register(server) -> None:
    """Both signed methods, on the authorization server's one client authenticator (token,
    revocation and introspection endpoints all authenticate through it)."""
    server.register_client_auth_method(PrivateKeyJWT.CLIENT_AUTH_METHOD, PrivateKeyJWT())
    server.register_client_auth_method(ClientSecretJWT.CLIENT_AUTH_METHOD, ClientSecretJWT())
