"""The authorization server: Authlib's, with our storage and policy plugged in."""

from __future__ import annotations

import time

from authlib.common.urls import add_params_to_uri
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.authenticate_client import (
    ClientAuthentication,
    authenticate_client_secret_basic as _authenticate_client_secret_basic,
)
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error, UnsupportedResponseTypeError
from authlib.oauth2.rfc6750 import (
    BearerTokenGenerator,
    BearerTokenValidator,
    InsufficientScopeError,
    InvalidTokenError,
)
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import current_app, g, make_response, render_template
from flask import request as flask_request
from sqlalchemy import bindparam, select

from .. import crypto
from ..extensions import db
from ..models import Client
from . import client_auth, store
from .checks import AuthorizationChecks
from .grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    IdTokenIssuer,
    OpenIDCodeExtension,
    RefreshTokenGrant,
    RequireS256,
    TokenStore,
)


class StoredAuthorizationRequest(OAuth2Request):
    """An authorization request replayed from the parameters a login flow kept.

    The person went through several pages between ``/authorize`` and the code;
    the request they started from is rebuilt here, and Authlib validates it again.
    """

    def __init__(self, params: dict[str, str]):
        super().__init__("GET", current_app.config["IDP_ISSUER"] + "/authorize")
        self.payload = BasicOAuth2Payload(params)

    @property
    def args(self):
        return self.payload.data

    @property
    def form(self):
        return {}


class TemporarilyUnavailableError(OAuth2Error):
    """RFC 6749 §4.1.2.1 ``temporarily_unavailable`` (Authlib has no class for it)."""

    error = "temporarily_unavailable"


class Issuer(IssuerParameter):
    """RFC 9207: ``iss`` in every authorization response, errors included."""

    def get_issuer(self) -> str:
        return current_app.config["IDP_ISSUER"]


class OpenIDProvider(AuthorizationServer):
    _grants_registered = False

    def init_app(self, app, query_client=None, save_token=None):
        super().init_app(app, query_client=find_client, save_token=TokenStore.save)
        # One server object serves every app of the process (tests create many, the CLI
        # one more): grants and extensions are registered once, or each app would add
        # its own hooks again (``iss`` appended once per app, grants listed twice).
        if self._grants_registered:
            return
        # The back channel (token, introspection, revocation) authenticates clients from the
        # per-process cache; the authorization endpoint reads them (``query_client``).
        self._client_auth = ClientAuthentication(authenticating_client)
        self.register_grant(AuthorizationCodeGrant, [AuthorizationChecks(), OpenIDCodeExtension(), RequireS256()])
        self.register_grant(RefreshTokenGrant, [IdTokenIssuer()])
        self.register_grant(ClientCredentialsGrant)
        self.register_extension(Issuer())
        self.register_client_auth_method("client_secret_basic", authenticate_client_secret_basic)
        client_auth.register(self)  # private_key_jwt, client_secret_jwt (RFC 7523)
        self._grants_registered = True

    def load_config(self, config):
        def expires_in(client, grant_type):
            return current_app.config["IDP_ACCESS_TOKEN_LIFETIME"]

        generator = BearerTokenGenerator(
            access_token_generator=lambda **kw: crypto.random_token(32),
            refresh_token_generator=lambda **kw: crypto.random_token(32),
            expires_generator=expires_in,
        )
        self.register_token_generator("default", generator)
        self.scopes_supported = None  # unknown scopes are dropped by the client, not refused

    def get_authorization_grant(self, request):
        """Authlib's lookup; an unsupported response type is refused without quoting it.

        Authlib quotes ``response_type`` in the error description, and an OAuth error
        refuses (ValueError: a 500) a description with a quote, a backslash or a
        non-ASCII character. The redirect URI is the same verified one Authlib uses.
        """
        try:
            return super().get_authorization_grant(request)
        except ValueError:
            pass
        redirect_uri = None
        client = self.query_client(request.payload.client_id)
        if client is not None and client.check_redirect_uri(request.payload.redirect_uri or ""):
            redirect_uri = request.payload.redirect_uri
        raise UnsupportedResponseTypeError("-", redirect_uri=redirect_uri)

    def create_oauth2_request(self, request):
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)

    def create_refusal_response(self, request, grant, error_class):
        """Refuse a stored authorization request with ``error_class`` (Authlib's own path refuses only
        with ``access_denied``): the same validation, redirect, ``state`` and ``iss`` hook."""
        try:
            redirect_uri = grant.validate_authorization_request()
            raise error_class(redirect_uri=redirect_uri)
        except OAuth2Error as error:
            error.state = request.payload.state
            response = self.handle_error_response(request, error)
        grant.execute_hook("after_authorization_response", response)
        self.execute_hook("after_create_authorization_response", response)  # RFC 9207 ``iss``
        return response

    def handle_error_response(self, request, error):
        if isinstance(request, StoredAuthorizationRequest) and not error.redirect_uri:
            # A login finished, but its request no longer validates without a trusted
            # redirect URI (the client or its URIs changed meanwhile): the person gets
            # the French page, never Authlib's JSON body, and is not redirected.
            return make_response(render_template("errors/authorization.html", error=error), 400)
        return super().handle_error_response(request, error)

    def authorization_error_response(self, request, error):
        """An error raised before Authlib's own response: add ``state`` and ``iss``."""
        error.state = echoable_state(request.payload.state) if request is not None else None
        response = self.handle_error_response(request, error)
        if error.redirect_uri and response.location:
            response.location = add_params_to_uri(response.location, {"iss": current_app.config["IDP_ISSUER"]})
        return response


def authenticate_client_secret_basic(query_client, request):
    """Authlib's ``client_secret_basic``, for which a malformed header is no credential.

    Authlib's parser raised on ``Basic `` with nothing after it (ValueError) and on
    credentials that are not UTF-8 (UnicodeDecodeError): a 500 instead of a 401.
    """
    try:
        return _authenticate_client_secret_basic(query_client, request)
    except (ValueError, UnicodeDecodeError):
        return None


def echoable_state(state: str | None) -> str | None:
    """``state`` as sent back with an error: not when it is over the parameter limit.

    An oversized state is itself the error; echoing it would only make a huge
    Location header. The relying party then sees no state and drops the answer.
    """
    if state is None or len(state) > current_app.config["IDP_MAX_PARAMETER_LENGTH"]:
        return None
    return state


def _plausible_client_id(client_id: str | None) -> bool:
    # Client identifiers are short URL-safe strings; anything else is unknown without
    # a query (PostgreSQL refuses a NUL character in a text parameter outright).
    return bool(client_id) and len(client_id) <= 64 and client_id.isprintable()


def find_client(client_id: str | None) -> Client | None:
    if not _plausible_client_id(client_id):
        return None
    return db.session.scalar(select(Client).where(Client.client_id == client_id))


_clients = Client.__table__
_CLIENT_BY_ID = select(_clients).where(_clients.c.client_id == bindparam("client_id"))


def _read_client(client_id: str | None) -> Client | None:
    """The client's row on the protocol connection, as a transient :class:`Client` (no session).

    Readable from any thread and any session; never to be added to a session.
    """
    if not _plausible_client_id(client_id):
        return None
    row = store.connection().execute(_CLIENT_BY_ID, {"client_id": client_id}).mappings().first()
    return Client(**row) if row is not None else None


#: Most clients a process keeps (registered clients are few; past this the cache starts again).
CLIENT_CACHE_SIZE = 1000


def authenticating_client(client_id: str | None) -> Client | None:
    """The client a relying party authenticates as on the back channel, from a per-process cache.

    Every token, introspection and revocation request authenticates its client: reading
    the ``clients`` row each time was one statement in three on a refresh. Each process
    keeps a client it found for ``IDP_CLIENT_CACHE_SECONDS`` (5 s), so a client removed
    (or a secret changed) by the CLI, on any host, is refused everywhere within that
    delay; a new client is never cached as unknown, so it works at once. The secret is
    still checked on every request (HMAC, constant time) against the cached hash.

    The cached :class:`Client` is built from the row, outside any session (:func:`_read_client`),
    shared by the threads of the process and only read: never add it to a session (the
    stores use its ``id``). The authorization endpoint does not use this cache: a redirect URI
    removed from a client is refused at once there.
    """
    lifetime = current_app.config["IDP_CLIENT_CACHE_SECONDS"]
    if lifetime <= 0:
        client = _read_client(client_id)
        g.idp_authenticated_client = client  # as below: a client removed mid-request is invalid_client
        return client
    cache = current_app.extensions.setdefault("idp_clients", {})
    now = time.monotonic()
    entry = cache.get(client_id)
    if entry is not None and entry[0] > now:
        g.idp_authenticated_client = entry[1]
        return entry[1]
    client = _read_client(client_id)
    if client is None:
        cache.pop(client_id, None)
        return None
    if len(cache) >= CLIENT_CACHE_SIZE:
        cache.clear()
    cache[client_id] = (now + lifetime, client)
    g.idp_authenticated_client = client
    return client


def forget_client() -> str | None:
    """Drop the client this request authenticated from the cache; its ``client_id``, if any."""
    client = getattr(g, "idp_authenticated_client", None)
    if client is not None:
        current_app.extensions.get("idp_clients", {}).pop(client.client_id, None)
        return client.client_id
    return None


class AccessTokenRequiredError(OAuth2Error):
    """No bearer token at all (RFC 6750 §3.1: the challenge then carries no error code)."""

    error = "invalid_token"
    description = ("An access token is required: in the 'Authorization: Bearer' header, or as "
                   "'access_token' in a form-encoded POST body.")
    status_code = 401

    def get_headers(self):
        realm = current_app.config["IDP_ISSUER"]
        return [*super().get_headers(), ("WWW-Authenticate", f'Bearer realm="{realm}"')]


class BearerRequestError(InvalidRequestError):
    """RFC 6750 §3.1 ``invalid_request`` at a protected resource (400, with its challenge):
    e.g. the access token sent by more than one method."""

    def get_headers(self):
        realm = current_app.config["IDP_ISSUER"]
        return [*super().get_headers(), ("WWW-Authenticate", f'Bearer realm="{realm}", error="invalid_request"')]


class BearerProtector(ResourceProtector):
    """The bearer token from ``Authorization: Bearer`` (RFC 6750 §2.1) or from the form body of a
    POST (§2.2); every refusal is a 401 challenge.

    §2.2's conditions: ``application/x-www-form-urlencoded``, a method with a body (so never
    GET), the ``access_token`` parameter once. The URI query (§2.3) is not read: the spec
    advises against it, and a token there lands in access logs and browser histories. A token
    sent both ways is ``invalid_request`` (§3.1).
    """

    def parse_request_authorization(self, request):
        parts = (request.headers.get("Authorization") or "").split(None, 1)
        in_header = bool(parts) and parts[0].lower() == "bearer"
        in_body = form_access_token()
        if in_header and in_body is not None:
            raise BearerRequestError("The access token must be sent once: in the Authorization header "
                                     "or in the form body.")
        if in_body is not None:
            token_string = in_body.strip()
        elif not in_header:
            raise AccessTokenRequiredError()
        else:
            token_string = parts[1].strip() if len(parts) == 2 else ""
        if not token_string:
            raise InvalidTokenError(description="Empty bearer token.")
        return self.get_token_validator("bearer"), token_string


def form_access_token() -> str | None:
    """``access_token`` of a form-encoded POST body (RFC 6750 §2.2); None when there is none."""
    if flask_request.method != "POST" or flask_request.mimetype != "application/x-www-form-urlencoded":
        return None
    values = flask_request.form.getlist("access_token")
    if len(values) > 1:
        raise BearerRequestError("Multiple 'access_token' in request.")
    return values[0] if values else None


class AccessTokenValidator(BearerTokenValidator):
    def authenticate_token(self, token_string: str):
        return TokenStore.find_access(token_string) if len(token_string) <= 256 else None

    def validate_token(self, token, scopes, request):
        if token is not None and token.user is None:
            # A client's own token (client_credentials): there is nobody to describe.
            raise InvalidTokenError(description="This token does not represent a person.")
        try:
            super().validate_token(token, scopes, request)
        except InsufficientScopeError as error:
            raise ScopeChallengeError(scopes) from error


class ScopeChallengeError(InsufficientScopeError):
    """403 ``insufficient_scope`` with its challenge (RFC 6750 §3: the header is required)."""

    def __init__(self, scopes):
        super().__init__()
        self.scopes = " ".join(scopes or [])

    def get_headers(self):
        return [
            *super().get_headers(),
            ("WWW-Authenticate", f'Bearer error="insufficient_scope", scope="{self.scopes}"'),
        ]


server = OpenIDProvider()
resource_protector = BearerProtector()
resource_protector.register_token_validator(AccessTokenValidator())
