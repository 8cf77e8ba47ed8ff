"""The forgotten-password journey: CAPTCHA series and reset links.

Neither table holds a secret as such: a CAPTCHA series is found by the keyed
hash of its random handle and checked against the keyed hash of its answer; a
reset link is found by the keyed hash of its random token. Both are single use
(``used_at``, set by one conditional UPDATE) and short-lived (``expires_at``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .clock import utcnow


class CaptchaChallenge(db.Model):
    """One CAPTCHA series shown on step 2 (image and sound of the same characters)."""

    __tablename__ = "captcha_challenges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Keyed hash of the random handle carried by the form and the image and sound URLs.
    handle_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    # Keyed hash of the expected answer, bound to the handle.
    answer_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class PasswordReset(db.Model):
    """A « Renouveler mon mot de passe » link sent by mail (step 4)."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Set when a newer link is sent or the password changes: only the newest link works.
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
