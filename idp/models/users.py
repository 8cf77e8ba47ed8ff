"""Insured people: the accounts that log in."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..regimes import name as regime_name
from .clock import utcnow

AFFILIATIONS = ("affiliated", "pending", "none")


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The NIR is the login identifier, never the OIDC ``sub`` (that one is pairwise).
    nir: Mapped[str] = mapped_column(String(15), unique=True, index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime)
    email: Mapped[str | None] = mapped_column(String(254))
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    birth_date: Mapped[date] = mapped_column(Date)
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    gender: Mapped[str | None] = mapped_column(String(10))
    regime_code: Mapped[str] = mapped_column(String(2), default="01")
    caisse: Mapped[str | None] = mapped_column(String(120))
    affiliation: Mapped[str] = mapped_column(String(16), default="affiliated")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The authenticator app (issue 12), loaded with the person in the same SELECT (a LEFT JOIN):
    # the login journey asks at step 1 whether there is one, without a statement of its own.
    totp: Mapped["TotpCredential | None"] = relationship(lazy="joined", uselist=False, viewonly=True)

    @property
    def has_app(self) -> bool:
        """An authenticator app enrolled and confirmed by a first code."""
        return self.totp is not None and self.totp.secret_encrypted is not None

    @property
    def regime_name(self) -> str | None:
        return regime_name(self.regime_code)

    def __repr__(self) -> str:  # never print the NIR or the hash in logs
        return f"<User {self.id}>"


class EmailValidation(db.Model):
    """A link that proves the person reads the mailbox (case 1 of the login journey)."""

    __tablename__ = "email_validations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)
