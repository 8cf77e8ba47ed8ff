"""Change the password while logged in: the current one first, then the seed's rules.

The current password is checked like the login's step 0: the attempt is reserved in
the same counter of wrong passwords per NIR (case 6, ``IDP_MAX_PASSWORD_FAILURES``,
one atomic statement before Argon2 runs), so the security space gives no extra
guesses to someone holding a session; a wrong one counts as the login's case 4.

The consequences are those of the forgotten-password seed's step 6, except for this
browser's own session: the notification mail (date and time), every *other*
session ended with its grants (back-channel logout where registered), every trusted
browser forgotten (a code at the next login, this browser too), the logins in
progress and the reset links of the person closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, update

from .. import audit, crypto, limits
from ..extensions import db
from ..login import policy
from ..mfa import devices
from ..models import BrowserSession, Grant, LoginFlow, User, utcnow
from ..models.recovery import PasswordReset
from ..oidc import backchannel


@dataclass(frozen=True)
class Check:
    ok: bool
    #: Case 6: the NIR is locked (until then); None otherwise.
    locked_until: datetime | None = None


def check_current(user: User, password: str) -> Check:
    """The current password, counted with the login's wrong passwords (case 4, then case 6)."""
    key = policy.nir_key(user.nir)
    attempt = limits.reserve(policy.password_failures(), key, commit=False)
    if not attempt.allowed:
        audit.record("password_change_refused", user_id=user.id, case=6, detail={"refused": True})
        db.session.commit()
        return Check(False, attempt.locked_until)
    db.session.commit()  # the reservation holds for the other workers while this one verifies
    if crypto.verify_password(user.password_hash, password):
        limits.release(policy.password_failures(), key)
        return Check(True)
    if attempt.locked_until is not None:  # that was the last attempt: case 6
        audit.record("password_change_refused", user_id=user.id, case=6)
        audit.record("lock_set", user_id=user.id, nir=user.nir, case=6,
                     detail={"kind": "password", "until": attempt.locked_until.isoformat() + "Z"})
        db.session.commit()
        return Check(False, attempt.locked_until)
    audit.record("password_change_refused", user_id=user.id, case=4)
    db.session.commit()
    return Check(False)


def change(user: User, password_hash: str, keep: BrowserSession) -> tuple[datetime, backchannel.Announcement]:
    """The new password and step 6's consequences, this browser's session ``keep`` excepted (not committed)."""
    now = utcnow()
    user.password_hash = password_hash
    user.password_changed_at = now
    forgotten = devices.revoke_all(user.id)
    table = BrowserSession.__table__
    ended = [sid for (sid,) in db.session.execute(
        update(table).where(table.c.user_id == user.id, table.c.ended_at.is_(None), table.c.id != keep.id)
        .values(ended_at=now).returning(table.c.sid)).all() if sid and sid != keep.sid]
    announcement = backchannel.sessions_ended(ended)
    revoked = db.session.execute(
        update(Grant).where(Grant.user_id == user.id, Grant.revoked_at.is_(None),
                            or_(Grant.sid.is_(None), Grant.sid != keep.sid))
        .values(revoked_at=now)).rowcount
    db.session.execute(update(LoginFlow).where(LoginFlow.user_id == user.id, LoginFlow.completed_at.is_(None),
                                               LoginFlow.expires_at > now).values(expires_at=now))
    db.session.execute(update(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None),
                                                   PasswordReset.revoked_at.is_(None)).values(revoked_at=now))
    audit.record("password_changed", user_id=user.id)
    if forgotten:
        audit.record("trusted_device_revoked", user_id=user.id,
                     detail={"count": forgotten, "reason": "password-change"})
    if revoked or ended:
        audit.record("tokens_revoked", user_id=user.id,
                     detail={"sessions": len(ended), "grants": revoked, "reason": "password-change"})
    return now, announcement
