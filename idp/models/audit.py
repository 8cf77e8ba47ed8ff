"""The audit trail: one row per security event of an account, client or key.

Written only by :func:`idp.audit.record`, in the same transaction as the change
it records. Never a secret and never a NIR in clear: ``nir_hash`` is a keyed hash
(:func:`idp.crypto.keyed_hash`, purpose ``audit-nir``), so the rows of attempts on
a NIR that has no account can be found from that NIR, and only by whoever holds
the server secret.

Indexed for the on-call question on a table of a hundred million rows: one
person's events by ``(user_id, at)`` or ``(nir_hash, at)``, and the purge by
``at``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .clock import utcnow


class AuditEvent(db.Model):
    __tablename__ = "audit_events"

    # BigInteger on PostgreSQL (a national service writes billions over the years); SQLite's
    # rowid alias must be INTEGER.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    event: Mapped[str] = mapped_column(String(40), nullable=False)
    # No foreign key: the trail outlives the account, the client and the key it names.
    user_id: Mapped[int | None] = mapped_column(Integer)
    nir_hash: Mapped[str | None] = mapped_column(String(64))
    client_id: Mapped[str | None] = mapped_column(String(64))
    case: Mapped[int | None] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(45))
    detail: Mapped[dict | None] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_audit_events_user_id_at", "user_id", "at"),
        Index("ix_audit_events_nir_hash_at", "nir_hash", "at"),
        Index("ix_audit_events_at", "at"),
    )
