"""What a user granted a client, and the codes and tokens issued from it.

A :class:`Grant` is one authorization: one user, one client, one authentication
(its time, methods and nonce). Every code and token issued from it points back to
it, so that a replayed code or a reused refresh token revokes the whole family in
one UPDATE, including tokens a racing request is about to save.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, TokenMixin
from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, bindparam, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .clients import Client
from .clock import epoch, utcnow
from .users import User


class Grant(db.Model):
    __tablename__ = "grants"
    # Every authorization request looks its nonce up among the client's grants (replay check).
    __table_args__ = (Index("ix_grants_client_id_nonce", "client_id", "nonce"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(String(500), default="")
    nonce: Mapped[str | None] = mapped_column(String(255))
    auth_time: Mapped[int | None] = mapped_column(Integer)
    acr: Mapped[str | None] = mapped_column(String(100))
    amr: Mapped[list | None] = mapped_column(JSON)
    # The login session (its ``sid``) the grant was made in: its ID tokens carry it, and ending
    # that session tells every client that took part (back-channel logout) and revokes its grants.
    sid: Mapped[str | None] = mapped_column(String(43), index=True)
    #: The releasable claims asked for by the ``claims`` parameter, per member
    #: (``{"id_token": [...], "userinfo": [...]}``, :func:`idp.oidc.claims_request.requested`).
    claims: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)

    client: Mapped[Client] = relationship()
    user: Mapped[User | None] = relationship()

    @classmethod
    def revoke(cls, connection: Connection, grant_id: int) -> None:
        """Revoke the grant and so every code and token issued from it (one UPDATE on ``connection``)."""
        connection.execute(_REVOKE_GRANT, {"grant_id": grant_id, "now": utcnow()})


class CodeState(AuthorizationCodeMixin):
    """What the code grant asks of a code: for the model and for the plain record of the token
    endpoint (:class:`idp.oidc.store.CodeRecord`); both have the code's columns and ``grant``."""

    def is_expired(self) -> bool:
        return utcnow() >= self.expires_at

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.grant.scope

    def get_nonce(self) -> str | None:
        return self.grant.nonce

    def get_auth_time(self) -> int | None:
        return self.grant.auth_time

    def get_acr(self) -> str | None:
        return self.grant.acr

    def get_amr(self) -> list | None:
        return self.grant.amr

    def claim(self, connection: Connection) -> bool:
        """Mark the code used; True for exactly one caller, however many race."""
        result = connection.execute(_CLAIM_CODE, {"code_id": self.id, "now": utcnow()})
        return result.rowcount == 1


class AuthorizationCode(db.Model, CodeState):
    __tablename__ = "authorization_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    code_challenge: Mapped[str | None] = mapped_column(String(128))  # None: a client allowed without PKCE
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)

    grant: Mapped[Grant] = relationship()


class TokenState(TokenMixin):
    """A token's state and Authlib's ``TokenMixin``: for the model and for the plain record the
    protocol endpoints use (:class:`idp.oidc.store.TokenRecord`); both have the token's columns,
    ``grant``, ``user`` and ``client``."""

    @property
    def expires_at(self) -> datetime:
        return self.issued_at + timedelta(seconds=self.expires_in)

    def grant_revoked(self) -> bool:
        return self.grant is not None and self.grant.revoked_at is not None

    def is_expired(self) -> bool:
        return utcnow() >= self.expires_at

    def is_revoked(self) -> bool:
        return self.access_revoked_at is not None or self.grant_revoked()

    def refresh_usable(self) -> bool:
        return (
            self.refresh_token_hash is not None
            and self.refresh_used_at is None
            and not self.grant_revoked()
            and self.refresh_expires_at is not None
            and utcnow() < self.refresh_expires_at
        )

    def claim_refresh(self, connection: Connection) -> bool:
        """Consume the refresh token; True for exactly one caller."""
        result = connection.execute(_CLAIM_REFRESH, {"token_id": self.id, "now": utcnow()})
        return result.rowcount == 1

    def revoke_access(self, connection: Connection) -> None:
        """Revoke the access token (kept, marked, so that introspection says it is inactive)."""
        connection.execute(_REVOKE_ACCESS, {"token_id": self.id, "now": utcnow()})

    # --- Authlib TokenMixin ----------------------------------------------------------
    def check_client(self, client) -> bool:
        return self.client_id == client.id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def get_user(self):
        return self.user

    def get_client(self):
        return self.client

    @property
    def issued_at_epoch(self) -> int:
        return epoch(self.issued_at)


class Token(db.Model, TokenState):
    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    scope: Mapped[str] = mapped_column(String(500), default="")
    issued_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_in: Mapped[int] = mapped_column(Integer)
    refresh_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    access_revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    refresh_used_at: Mapped[datetime | None] = mapped_column(DateTime)

    client: Mapped[Client] = relationship()
    grant: Mapped[Grant | None] = relationship()
    user: Mapped[User | None] = relationship()


# The single-use and revocation UPDATEs, built once: Core statements on the tables (no ORM
# session synchronisation), executed on the connection the caller passes (the protocol
# endpoints' own: idp.oidc.store.connection), in its transaction.
_grants, _codes, _tokens = Grant.__table__, AuthorizationCode.__table__, Token.__table__


def _set_once(table, key: str, column: str):
    """``UPDATE table SET column = :now WHERE id = :key AND column IS NULL``: true for one caller only."""
    return (update(table).where(table.c.id == bindparam(key), table.c[column].is_(None))
            .values({column: bindparam("now")}))


_REVOKE_GRANT = _set_once(_grants, "grant_id", "revoked_at")
_CLAIM_CODE = _set_once(_codes, "code_id", "used_at")
_REVOKE_ACCESS = _set_once(_tokens, "token_id", "access_revoked_at")
_CLAIM_REFRESH = _set_once(_tokens, "token_id", "refresh_used_at")
