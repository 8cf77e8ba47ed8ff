"""Relying parties: the partner sites registered by an administrator."""

from __future__ import annotations

from datetime import datetime, timedelta

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list
from sqlalchemy import JSON, Boolean, DateTime, Integer, LargeBinary, String, false, true
from sqlalchemy.orm import Mapped, mapped_column

from .. import crypto
from ..extensions import db
from .clock import utcnow

CONFIDENTIAL_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
#: Client authentication methods a client can be registered for (RFC 7591 ``token_endpoint_auth_method``).
JWT_AUTH_METHODS = ("client_secret_jwt", "private_key_jwt")
AUTH_METHODS = (*CONFIDENTIAL_AUTH_METHODS, *JWT_AUTH_METHODS, "none")


class Client(db.Model, ClientMixin):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    client_secret_hash: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    scope: Mapped[str] = mapped_column(String(500), default="openid")
    grant_types: Mapped[list] = mapped_column(JSON, default=list)
    id_token_signed_response_alg: Mapped[str | None] = mapped_column(String(10))
    # Secret rotation: the previous secret's hash keeps working until ``previous_secret_expires_at``.
    previous_secret_hash: Mapped[str | None] = mapped_column(String(64))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    # PKCE S256 required (default); False only for a confidential client, which must then send a nonce.
    pkce_required: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true(), nullable=False)
    # A confidential client whose browser code calls /token, /userinfo, /revoke (public clients always may).
    cors: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), nullable=False)
    # OIDC Back-Channel Logout 1.0: where logout tokens are POSTed, and whether they must carry ``sid``.
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(2048))
    backchannel_logout_session_required: Mapped[bool] = mapped_column(Boolean, default=False,
                                                                      server_default=false())
    #: UserInfo as a signed JWT with this algorithm (OIDC Core §5.3.2); plain JSON when None.
    userinfo_signed_response_alg: Mapped[str | None] = mapped_column(String(10))
    #: What the login pages show of the partner (RFC 7591 ``logo_uri``, ``client_uri``), only when registered.
    logo_uri: Mapped[str | None] = mapped_column(String(2048))
    client_uri: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # --- signed client authentication (RFC 7523, OIDC Core §9; idp.oidc.client_auth) ---
    #: The one method the client authenticates with; NULL for a client registered before
    #: methods were registered: client_secret_basic or client_secret_post, or none if public.
    token_endpoint_auth_method: Mapped[str | None] = mapped_column(String(32))
    #: The ``alg`` its assertions must carry (private_key_jwt, client_secret_jwt).
    token_endpoint_auth_signing_alg: Mapped[str | None] = mapped_column(String(10))
    #: private_key_jwt: its public keys, inline (a JWK Set) or where to fetch them.
    jwks: Mapped[dict | None] = mapped_column(JSON)
    jwks_uri: Mapped[str | None] = mapped_column(String(2048))
    #: client_secret_jwt only: the secret itself, AES-256-GCM under the key-encryption secret
    #: (an HMAC assertion cannot be checked against a hash); see idp.oidc.client_auth.
    client_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)

    SECRET_PURPOSE = "client-secret"

    # --- secrets ------------------------------------------------------------------
    @property
    def is_public(self) -> bool:
        return self.auth_methods == ("none",)

    def set_secret(self, secret: str) -> None:
        self.client_secret_hash = crypto.keyed_hash(self.SECRET_PURPOSE, secret)

    def rotate_secret(self, secret: str, overlap: int) -> None:
        """A new secret; the current one keeps working for ``overlap`` seconds (none when 0)."""
        if overlap > 0 and self.client_secret_hash is not None:
            self.previous_secret_hash = self.client_secret_hash
            self.previous_secret_expires_at = utcnow() + timedelta(seconds=overlap)
        else:
            self.previous_secret_hash = self.previous_secret_expires_at = None
        self.set_secret(secret)

    def check_client_secret(self, client_secret: str) -> bool:
        """The current secret, or the previous one during its overlap; both compared in constant time.

        Both comparisons are always made, so the time does not tell which one matched.
        """
        if self.client_secret_hash is None or not client_secret:
            return False
        presented = crypto.keyed_hash(self.SECRET_PURPOSE, client_secret)
        current = crypto.equals(presented, self.client_secret_hash)
        previous = crypto.equals(presented, self.previous_secret_hash or self.client_secret_hash)
        in_overlap = self.previous_secret_hash is not None and self.previous_secret_expires_at is not None \
            and utcnow() < self.previous_secret_expires_at
        return current or (previous and in_overlap)

    @property
    def needs_pkce(self) -> bool:
        """PKCE S256 is required of every public client, and of a confidential one unless allowed without."""
        return self.is_public or self.pkce_required is not False

    @property
    def cors_allowed(self) -> bool:
        """Whether the origins of its redirect URIs may call the back channel from a browser (idp.oidc.cors)."""
        return self.is_public or bool(self.cors)

    # --- Authlib ClientMixin --------------------------------------------------------
    @property
    def client_metadata(self) -> dict:
        return {
            "client_name": self.name,
            "redirect_uris": list(self.redirect_uris or []),
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris or []),
            "grant_types": list(self.grant_types or []),
            "token_endpoint_auth_method": self.auth_methods[0],
            "id_token_signed_response_alg": self.id_token_signed_response_alg,
            "backchannel_logout_uri": self.backchannel_logout_uri,
            "backchannel_logout_session_required": bool(self.backchannel_logout_session_required),
            "userinfo_signed_response_alg": self.userinfo_signed_response_alg,
        }

    @property
    def auth_methods(self) -> tuple[str, ...]:
        """The client authentication methods this client may use: the registered one only."""
        if self.token_endpoint_auth_method:
            return (self.token_endpoint_auth_method,)
        return ("none",) if self.client_secret_hash is None else CONFIDENTIAL_AUTH_METHODS

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Never guess: the redirect_uri parameter is required (OIDC Core 3.1.2.1).
        return None

    def get_allowed_scope(self, scope: str) -> str:
        """Scopes asked for and registered; anything else is dropped silently."""
        if not scope:
            return ""
        allowed = set(scope_to_list(self.scope))
        return list_to_scope([s for s in scope_to_list(scope) if s in allowed])

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact string comparison: no normalisation, no prefix, no wildcard.
        return redirect_uri in (self.redirect_uris or [])

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # A client registered for one method is refused with every other (token, revocation, introspection).
        return method in self.auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in (self.grant_types or [])

    def __repr__(self) -> str:
        return f"<Client {self.client_id}>"
