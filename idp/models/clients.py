"""Relying parties: the partner sites registered by an administrator."""

from __future__ import annotations

from datetime import datetime

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list
from sqlalchemy import JSON, DateTime, Integer, LargeBinary, String
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

    def check_client_secret(self, client_secret: str) -> bool:
        if self.client_secret_hash is None or not client_secret:
            return False
        return crypto.equals(crypto.keyed_hash(self.SECRET_PURPOSE, client_secret), self.client_secret_hash)

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
