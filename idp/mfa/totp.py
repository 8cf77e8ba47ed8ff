"""The authenticator app: TOTP (RFC 6238) as a second factor that does not need the mailbox.

Service API (the security space's enrolment pages call it; each function works in
the caller's transaction and the caller commits, so that the audit row recorded
here is written with the change it records):

``begin_enrolment(user) -> Enrolment``
    A new random secret (160 bits), kept *pending* and encrypted; returns
    ``Enrolment(secret_b32, secret_groups, otpauth_uri, qr_svg)`` to show once:
    the QR code (an inline SVG made in the process by segno, never by a remote
    service) and the key written in groups of four for manual entry. A second
    call replaces the pending secret; an app already active stays active until
    the new one is confirmed.
``pending_enrolment(user) -> Enrolment | None``
    The pending secret shown again (the enrolment page's GET: a reload shows the
    same key, not a new one), or None when no enrolment is under way.
``confirm_enrolment(user, code) -> bool``
    A right first code of the pending secret makes it the active one (audited
    ``mfa_app_enrolled``); that code is then used (it cannot log in).
``is_enrolled(user) -> bool``
    An active (confirmed) app.
``verify(user, code) -> bool``
    A right code of the active app, within ±``IDP_TOTP_DRIFT_STEPS`` steps, that was
    not accepted before. The caller counts attempts (:mod:`idp.limits`) before it
    calls this: at login, :class:`idp.mfa.app_steps.AppCodeStep` does.
``remove(user) -> bool``
    Forget the app (active and pending); audited ``mfa_app_removed``.

Storage: the secret is encrypted with AES-256-GCM under the key-encryption secret,
exactly as the signing keys are (:func:`idp.oidc.keys.seal`), bound to the user id
as associated data, so that a copy of the database alone reveals no secret and a
ciphertext cannot be moved to another person's row.

Single use: a code is accepted by ONE conditional statement,
``UPDATE totp_credentials SET last_used_step = :step WHERE user_id = :u AND
last_used_step < :step`` — of many parallel submissions of one code (on any
worker), exactly one moves the step forward; the others, and any later use of
that code or of an older one, match no row (RFC 6238 §5.2).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pyotp
import segno
from flask import current_app
from sqlalchemy import bindparam, delete, update

from .. import audit
from ..extensions import db
from ..models import TotpCredential, User, utcnow
from ..oidc import keys

_table = TotpCredential.__table__
_c = _table.c

#: Accepts a code of time step ``step``: only if no code of that step or a later one was accepted.
_ACCEPT = (
    update(_table)
    .where(_c.user_id == bindparam("u"), _c.secret_encrypted.is_not(None), _c.last_used_step < bindparam("step"))
    .values(last_used_step=bindparam("step"))
)
#: Makes the pending secret active; matches only while that very secret is still the pending one.
_CONFIRM = (
    update(_table)
    .where(_c.user_id == bindparam("u"), _c.pending_secret_encrypted == bindparam("blob"))
    .values(secret_encrypted=bindparam("blob"), pending_secret_encrypted=None, confirmed_at=bindparam("now"),
            last_used_step=bindparam("step"))
)


@dataclass(frozen=True)
class Enrolment:
    secret_b32: str
    #: The key as a person types it: groups of four characters (``ABCD EFGH …``).
    secret_groups: str
    otpauth_uri: str
    #: An inline ``<svg>`` of the QR code of ``otpauth_uri``.
    qr_svg: str


def _binding(user_id: int) -> str:
    return f"totp:{user_id}"


def _seal(user_id: int, secret: str) -> bytes:
    return keys.seal(_binding(user_id), secret.encode())


def _unseal(user_id: int, blob: bytes) -> str:
    return keys.unseal(_binding(user_id), bytes(blob)).decode()


def _period() -> int:
    return current_app.config["IDP_TOTP_PERIOD"]


def _drift() -> int:
    return current_app.config["IDP_TOTP_DRIFT_STEPS"]


def _credential(user: User) -> TotpCredential | None:
    return db.session.get(TotpCredential, user.id)


def _matching_step(secret: str, code: str) -> int | None:
    """The time step within the drift whose code is ``code`` (compared in constant time), or None.

    Every step of the window is compared, whichever matches, so the time taken says nothing.
    """
    code = (code or "").strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=_period())
    now = int(time.time()) // _period()
    found = None
    for step in range(now - _drift(), now + _drift() + 1):
        if pyotp.utils.strings_equal(totp.generate_otp(step), code) and found is None:
            found = step
    return found


def _label(user: User) -> str:
    return user.email or f"{user.given_name} {user.family_name}"


def begin_enrolment(user: User) -> Enrolment:
    secret = pyotp.random_base32(32)  # 160 bits (RFC 4226 §4's recommended length)
    blob = _seal(user.id, secret)
    credential = _credential(user)
    if credential is None:
        db.session.add(TotpCredential(user_id=user.id, pending_secret_encrypted=blob, created_at=utcnow()))
    else:
        credential.pending_secret_encrypted = blob
    db.session.flush()
    return _enrolment(user, secret)


def pending_enrolment(user: User) -> Enrolment | None:
    credential = _credential(user)
    if credential is None or credential.pending_secret_encrypted is None:
        return None
    return _enrolment(user, _unseal(user.id, bytes(credential.pending_secret_encrypted)))


def _enrolment(user: User, secret: str) -> Enrolment:
    uri = pyotp.TOTP(secret, interval=_period()).provisioning_uri(
        name=_label(user), issuer_name=current_app.config["IDP_TOTP_ISSUER"])
    svg = segno.make(uri, error="m").svg_inline(scale=4, border=2, title="QR code")
    groups = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return Enrolment(secret_b32=secret, secret_groups=groups, otpauth_uri=uri, qr_svg=svg)


def confirm_enrolment(user: User, code: str) -> bool:
    credential = _credential(user)
    if credential is None or credential.pending_secret_encrypted is None:
        return False
    blob = bytes(credential.pending_secret_encrypted)
    step = _matching_step(_unseal(user.id, blob), code)
    if step is None:
        return False
    done = db.session.execute(_CONFIRM, {"u": user.id, "blob": blob, "now": utcnow(), "step": step})
    if done.rowcount != 1:  # a parallel confirmation (or a new enrolment) came first
        return False
    db.session.expire(credential)
    audit.record("mfa_app_enrolled", user_id=user.id, nir=user.nir)
    return True


def is_enrolled(user: User) -> bool:
    credential = _credential(user)
    return credential is not None and credential.secret_encrypted is not None


def verify(user: User, code: str) -> bool:
    credential = user.totp if "totp" in user.__dict__ else _credential(user)
    if credential is None or credential.secret_encrypted is None:
        return False
    step = _matching_step(_unseal(user.id, bytes(credential.secret_encrypted)), code)
    if step is None:
        return False
    return db.session.execute(_ACCEPT, {"u": user.id, "step": step}).rowcount == 1


def remove(user: User, actor: str = "person") -> bool:
    """Forget the app; ``actor`` says who in the audit row (``person``, or ``cli`` for the 3646 agents)."""
    gone = db.session.execute(delete(TotpCredential).where(TotpCredential.user_id == user.id)).rowcount
    if gone:
        audit.record("mfa_app_removed", user_id=user.id, nir=user.nir, detail={"by": actor})
    return bool(gone)
