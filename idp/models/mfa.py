"""The second factor without the mailbox (issue 12): the authenticator app and recovery codes.

* :class:`TotpCredential` — one per person: the TOTP secret, **encrypted** (AES-256-GCM
  under the key-encryption secret, like the signing keys, bound to the user id), pending
  until a first code confirms it (``confirmed_at``), and the last time step accepted
  (``last_used_step``): a code is accepted once, by one conditional UPDATE that moves it
  forward (:mod:`idp.mfa.totp`).
* :class:`RecoveryCode` — ten single-use codes, each stored as a keyed hash bound to the
  person; ``used_at`` is set by one conditional UPDATE (:mod:`idp.mfa.recovery_codes`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .clock import utcnow


class TotpCredential(db.Model):
    __tablename__ = "totp_credentials"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    # The active secret (None until a first code confirmed one), and one being enrolled: a new
    # enrolment never disables the app in use before its own first code is right.
    secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    pending_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # None while pending: the app is active only once a first code was right.
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The RFC 6238 time step (T) of the last code accepted; a code of that step or an earlier one is refused.
    last_used_step: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class RecoveryCode(db.Model):
    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Keyed hash (HMAC-SHA-256) of the code, bound to the user id: found and consumed by one UPDATE.
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)
