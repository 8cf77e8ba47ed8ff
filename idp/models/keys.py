"""Signing keys, shared by every worker and host through the database.

Life cycle: ``next`` (published, not yet signing) → ``active`` (signs) →
``retired`` (published so that tokens it signed still verify) → removed.
The private part is stored encrypted (AES-256-GCM, see :mod:`idp.oidc.keys`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .clock import utcnow

KEY_STATES = ("next", "active", "retired")


class SigningKey(db.Model):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10), index=True)
    status: Mapped[str] = mapped_column(String(10), index=True)
    public_jwk: Mapped[dict] = mapped_column(JSON)
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime)

    def __repr__(self) -> str:
        return f"<SigningKey {self.kid} {self.alg} {self.status}>"
