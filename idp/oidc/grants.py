"""The grants and extensions registered on the authorization server.

Authlib carries the protocol; these subclasses only say where things are stored
and which policy applies (PKCE S256 for everyone, rotation of refresh tokens,
replay detection that revokes a whole grant).
"""

from __future__ import annotations

import time
from datetime import timedelta

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, grants
from authlib.oauth2.rfc6749.hooks import hooked
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode, OpenIDToken
from authlib.oidc.core.grants.util import validate_request_prompt
from flask import current_app
from sqlalchemy import select

from .. import audit, crypto
from ..extensions import db
from ..models import AuthorizationCode, Grant, utcnow
from . import claims_request, keys, store
from .claims import USER_SCOPES, pairwise_sub, user_claims
from .store import TokenStore

CODE_PURPOSE = TokenStore.CODE  # the keyed hash of a code, as stored (save_authorization_code)
#: Every client authentication method at the token endpoint; each client may use the one it registered.
ALL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "client_secret_jwt", "none"]
CONFIDENTIAL_AUTH_METHODS = [m for m in ALL_AUTH_METHODS if m != "none"]


def _cfg(name: str):
    return current_app.config[f"IDP_{name}"]


def session_id_claim(grant) -> dict:
    """``sid`` (OIDC Back-Channel Logout §2.1): the login session the grant was made in, in every ID
    token issued from it, refreshed ones included, so that a logout token names the same session."""
    return {"sid": grant.sid} if grant.sid else {}


# --- Authorization code -----------------------------------------------------------------

class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS

    @staticmethod
    def validate_authorization_redirect_uri(request, client):
        """Authlib's check, with an error description that never quotes the request.

        Authlib puts the refused URI in the description, and an OAuth error refuses
        (ValueError) a description with a quote, a backslash or a non-ASCII
        character: such a redirect_uri was a 500 instead of the error page.
        """
        redirect_uri = request.payload.redirect_uri
        if not redirect_uri:
            raise InvalidRequestError("Missing 'redirect_uri' in request.")
        if not client.check_redirect_uri(redirect_uri):
            raise InvalidRequestError("This 'redirect_uri' is not registered for the client.")
        return redirect_uri

    def save_authorization_code(self, code: str, request) -> None:
        """``request.user`` is the :class:`~idp.models.BrowserSession` that authenticated."""
        auth = request.user
        grant = Grant(
            client_id=request.client.id,
            user_id=auth.user_id,
            scope=request.scope or "",
            nonce=request.payload.data.get("nonce"),
            auth_time=auth.auth_time,
            acr=auth.acr,
            amr=list(auth.amr or []),
            sid=auth.sid,
            # Checked at /authorize (idp.oidc.checks.check_claims_request); kept for every token.
            claims=claims_request.requested(claims_request.parse(request.payload.data.get("claims"))),
        )
        db.session.add(grant)
        db.session.flush()
        db.session.add(
            AuthorizationCode(
                code_hash=crypto.keyed_hash(CODE_PURPOSE, code),
                grant_id=grant.id,
                redirect_uri=request.payload.redirect_uri,
                # No challenge only for a confidential client allowed without PKCE (checks.check_pkce).
                code_challenge=request.payload.data.get("code_challenge") or None,
                code_challenge_method="S256" if request.payload.data.get("code_challenge") else None,
                expires_at=utcnow() + timedelta(seconds=_cfg("AUTHORIZATION_CODE_LIFETIME")),
            )
        )
        db.session.commit()

    def query_authorization_code(self, code: str, client):
        if not code or len(code) > 256:
            return None
        item = TokenStore.find_code(code)
        if item is None or item.grant.client_id != client.id:
            return None
        if item.used_at is not None:
            # RFC 6749 §4.1.2: a code used twice revokes what was issued from it.
            Grant.revoke(store.connection(), item.grant_id)
            store.commit()
            return None
        if item.is_expired() or item.grant.revoked_at is not None:
            return None
        return item

    def authenticate_user(self, authorization_code):
        # The code is consumed here, after every check has passed, atomically.
        if not authorization_code.claim(store.connection()):
            Grant.revoke(store.connection(), authorization_code.grant_id)
            store.commit()
            raise InvalidGrantError("Authorization code already used.")
        return authorization_code.user

    def delete_authorization_code(self, authorization_code) -> None:
        """Kept, marked used, so that a replay is recognised and punished."""


class RequireS256(CodeChallenge):
    """PKCE with S256 for every client, public or confidential (RFC 9700 §2.1.1).

    Except a confidential client an administrator allowed without PKCE
    (:attr:`idp.models.Client.needs_pkce`): its code may carry no challenge, and is
    then exchanged without a ``code_verifier`` (Authlib's rule: a verifier sent for
    a code issued without a challenge is refused, RFC 9700 §4.8.2).
    """

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def __init__(self):
        super().__init__(required=True)

    def __call__(self, grant):
        # The challenge is checked in the authorization pipeline (idp.oidc.checks.check_pkce).
        grant.register_hook("after_validate_token_request", self.validate_code_verifier)

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is supported.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):
        code = grant.request.authorization_code
        if code.code_challenge is None and not grant.request.client.is_public:
            super().validate_code_verifier(grant, result)  # no challenge: a verifier is refused
            return
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'.")
        super().validate_code_verifier(grant, result)


# --- ID tokens -------------------------------------------------------------------------

class IdTokenIssuer(OpenIDToken):
    """Signs ID tokens with the active key of the client's algorithm.

    An ID token carries the authentication only (:data:`idp.oidc.claims_request.ID_TOKEN_BASE`),
    plus the person's claims the client asked for in it with the ``claims`` parameter and
    its scopes allow (OIDC Core §5.4, §5.5); everything else about the person is at
    UserInfo. The same on refresh: the request is kept with the grant.
    """

    def get_client_algorithm(self, client) -> str:
        return client.id_token_signed_response_alg or _cfg("SIGNING_ALG")

    def resolve_client_private_key(self, client):
        return keys.signing_key(self.get_client_algorithm(client))

    def get_encode_header(self, client) -> dict:
        key = self.resolve_client_private_key(client)
        return {"alg": self.get_client_algorithm(client), "kid": key.kid, "typ": "JWT"}

    def get_client_claims(self, client) -> dict:
        now = int(time.time())
        return {"iss": _cfg("ISSUER"), "aud": client.client_id, "iat": now, "exp": now + _cfg("ID_TOKEN_LIFETIME")}

    def get_compatible_claims(self, request) -> dict:
        claims = self.get_client_claims(request.client)
        source = request.authorization_code or request.refresh_token
        grant = source.grant
        claims["sub"] = pairwise_sub(request.user, request.client)
        # auth_time is when the person really authenticated, also on refresh (OIDC Core §12.2).
        claims["auth_time"] = grant.auth_time
        if grant.acr:
            claims["acr"] = grant.acr
        if grant.amr:
            claims["amr"] = list(grant.amr)
        claims.update(session_id_claim(grant))
        claims.update(claims_request.for_id_token(user_claims(request.user, self._token_scope(request, source)),
                                                  grant.claims))
        return claims

    @staticmethod
    def _token_scope(request, source) -> str:
        """The scope of the token being issued, as Authlib's grants decide it: the code's, or on
        refresh the narrower one asked for (already checked to be within the old one)."""
        if request.refresh_token is not None and request.payload.scope:
            return request.payload.scope
        return source.get_scope()

    def generate_user_info(self, user, scope):
        """Nothing by scope: the person's claims are at UserInfo (see :meth:`get_compatible_claims`)."""
        return UserInfo()


class OpenIDCodeExtension(IdTokenIssuer, OpenIDCode):
    """OIDC on the code grant: a nonce never seen before for this client (required without PKCE, idp.oidc.checks)."""

    def __init__(self):
        OpenIDCode.__init__(self, require_nonce=True)

    def __call__(self, grant):
        # The nonce is checked in the authorization pipeline (idp.oidc.checks.check_nonce).
        grant.register_hook("after_create_token_response", self.process_token)
        grant.register_hook("after_validate_consent_request", validate_request_prompt)

    def exists_nonce(self, nonce: str, request) -> bool:
        client = request.client
        return db.session.scalar(
            select(Grant.id).where(Grant.client_id == client.id, Grant.nonce == nonce).limit(1)
        ) is not None


# --- Refresh token -----------------------------------------------------------------------

def _reuse_detected(token, client) -> None:
    """The audit row of a refresh token presented again (its grant revoked), in the same transaction."""
    audit.record("tokens_revoked", user_id=token.user_id, client_id=client.get_client_id(),
                 detail={"reason": "refresh-reuse", "grant": token.grant_id}, connection=store.connection())


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """Rotating refresh tokens: each use returns a new one; a reuse revokes the grant."""

    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str):
        if not refresh_token or len(refresh_token) > 256:
            return None
        token = TokenStore.find_refresh(refresh_token)
        if token is None:
            return None
        if token.refresh_used_at is not None and token.grant_id and token.check_client(self.request.client):
            Grant.revoke(store.connection(), token.grant_id)  # RFC 9700 §4.14.2: reuse means theft
            _reuse_detected(token, self.request.client)
            store.commit()
            return None
        if token.grant is not None and utcnow() >= token.grant.created_at + timedelta(seconds=_cfg("GRANT_LIFETIME")):
            return None  # the grant is too old: the person logs in again
        return token if token.refresh_usable() else None

    def authenticate_user(self, refresh_token):
        if not refresh_token.claim_refresh(store.connection()):
            if refresh_token.grant_id:
                Grant.revoke(store.connection(), refresh_token.grant_id)
                _reuse_detected(refresh_token, self.request.client)
            store.commit()
            raise InvalidGrantError("Refresh token already used.")
        return refresh_token.user

    def revoke_old_credential(self, refresh_token) -> None:
        """Already consumed in :meth:`authenticate_user`."""


# --- Client credentials -----------------------------------------------------------------

class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def validate_token_request(self):
        super().validate_token_request()
        # Only scopes the client is registered for, and none about a person: there is
        # no person behind this token.
        allowed = self.request.client.get_allowed_scope(self.request.payload.scope or "")
        self.request.scope = " ".join(s for s in allowed.split() if s not in USER_SCOPES)

    @hooked
    def create_token_response(self):
        # Authlib's version issues the *requested* scope (request.payload.scope), not
        # the filtered one: a client could get any scope it asked for.
        token = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER
