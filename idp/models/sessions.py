"""Server-side state of a browser: a login in progress, and the login session after it.

Both are found by a random identifier of 256 bits kept in an HttpOnly cookie; only
its keyed hash is stored, so a database dump does not let anyone take a session over.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .clients import Client
from .clock import utcnow
from .users import User


class LoginFlow(db.Model):
    """A login in progress, bound to the authorization request it started from.

    Or, ``purpose == "account"``, started by the security space itself: no relying party
    (``client_id`` empty, ``authorization_params`` empty), the browser goes back to
    ``return_to`` once logged in. ``second_factor_required``: the trusted-browser shortcut
    does not apply (a fresh login before a change in the security space).
    """

    __tablename__ = "login_flows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flow_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    authorization_params: Mapped[dict] = mapped_column(JSON)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Steps already passed, in order (``["password"]``, ``["password", "code"]``...).
    passed: Mapped[list] = mapped_column(JSON, default=list)
    login_hint: Mapped[str | None] = mapped_column(String(32))
    # The pending security code (steps 2-3): its keyed hash only, one at a time.
    code_hash: Mapped[str | None] = mapped_column(String(64))
    code_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    code_sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    # « J'utilise mon ordinateur personnel »: remember this browser once the code is right.
    remember_device: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The security space's own login (None: a relying party's authorization request).
    purpose: Mapped[str | None] = mapped_column(String(16))
    # Where that login goes back to: a path of the security space.
    return_to: Mapped[str | None] = mapped_column(String(200))
    # The second factor is asked even on a trusted browser (read by TrustedDeviceStep.applies).
    second_factor_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The second factor chosen at step 1 by a person with an authenticator app (issue 12):
    # None (the mail code, as for everyone else), "mail", "app" or "recovery" (a recovery code).
    second_factor: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The answer to the last form of the login (Post/Redirect/Get): shown by the GETs that
    # follow until the next form; message keys, field errors, the NIR typed, never a secret.
    notice: Mapped[dict | None] = mapped_column(JSON)

    user: Mapped[User | None] = relationship()
    #: The partner site that asked for the login (its registered name and branding on every page).
    client: Mapped[Client] = relationship()


class BrowserSession(db.Model):
    """The provider's own login session: single sign-on and ``prompt=none``."""

    __tablename__ = "browser_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sid_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    # The session's public identifier, the ``sid`` of OIDC Front/Back-Channel Logout: random,
    # not the cookie's value nor derived from it, so it may appear in ID and logout tokens.
    # Kept when the same person logs in again in the same browser (prompt=login).
    sid: Mapped[str | None] = mapped_column(String(43))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    auth_time: Mapped[int] = mapped_column(Integer)
    amr: Mapped[list] = mapped_column(JSON, default=list)
    acr: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship()
