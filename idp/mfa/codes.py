"""The security code sent by email (steps 1 to 3 of the seed).

Six digits from pyotp's HOTP over a fresh 160-bit random secret (so from a
cryptographic source), valid ``CODE_LIFETIME`` seconds, single use, one pending
code per login attempt (a new one replaces it). Only a keyed hash bound to the
login flow is stored; the comparison is constant-time; consuming it is one
conditional UPDATE, so twenty parallel submissions succeed exactly once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from flask import current_app
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm.attributes import set_committed_value

from .. import audit, crypto, limits
from ..extensions import db
from ..login import policy
from ..login.steps import flow_client
from ..mail import MailError, render_mail, send_mail
from ..models import LoginFlow, utcnow

PURPOSE = "security-code"

_flows = LoginFlow.__table__
#: The pending code alone, read again after the reservation.
_PENDING = select(_flows.c.code_hash).where(_flows.c.id == bindparam("flow_id"))
#: Consumes the code: matches only while that very code is still pending (single use).
_CONSUME = (
    update(_flows)
    .where(_flows.c.id == bindparam("flow_id"), _flows.c.code_hash == bindparam("submitted_hash"))
    .values(code_hash=None, code_expires_at=None)
)


def _hash(flow: LoginFlow, code: str) -> str:
    return crypto.keyed_hash(PURPOSE, f"{flow.id}:{code}")


def matches(flow: LoginFlow, submitted: str) -> bool:
    """Whether ``submitted`` is the code pending for ``flow`` (constant-time comparison of keyed hashes)."""
    return flow.code_hash is not None and pyotp.utils.strings_equal(_hash(flow, submitted), flow.code_hash)


def lifetime_minutes() -> int:
    """``CODE_LIFETIME`` as the pages and the mail say it (whole minutes, at least one)."""
    return max(1, current_app.config["IDP_CODE_LIFETIME"] // 60)


def pending(flow: LoginFlow) -> bool:
    """A code was sent for ``flow`` and can still be typed (not used, not expired)."""
    return flow.code_hash is not None and flow.code_expires_at is not None and utcnow() < flow.code_expires_at


def generate() -> str:
    return pyotp.HOTP(pyotp.random_base32(), digits=6).at(0)


def issue(flow: LoginFlow) -> datetime | None:
    """Send a new code for ``flow``; return the end of the quota block instead (case 3).

    The request is reserved in the quota before the mail goes (so parallel requests
    never send more than ``CODE_QUOTA`` codes), and the new code replaces the pending
    one only once its mail has left. When the mail server refuses it, the quota is
    given back, the code sent before stays valid, and :class:`~idp.mail.MailError`
    propagates: an outage costs the person nothing.
    """
    user = flow.user
    quota, key = policy.code_quota(), policy.user_key(user.id)
    attempt = limits.reserve(quota, key, commit=False)
    if not attempt.allowed:  # case 3: recorded in the transaction of the quota's statement
        record_failure(flow, 3, "code-request", refused=not attempt.set_lock)
        if attempt.set_lock:
            _audit(flow, "quota_blocked", case=3, detail={"kind": "code", "until": _iso(attempt.locked_until)})
        limits.commit_keeping_loaded()
        return attempt.locked_until
    limits.commit_keeping_loaded()  # the reservation holds for the other workers while the mail goes
    code = generate()
    now = utcnow()
    expires_at = now + timedelta(seconds=current_app.config["IDP_CODE_LIFETIME"])
    subject, text, html = render_mail("security_code", code=code, user=user, expires_at=expires_at,
                                      lifetime_minutes=lifetime_minutes())
    try:
        send_mail(user.email, subject, text, html)
    except MailError:
        limits.give_back(quota, key)
        db.session.commit()
        raise
    flow.code_hash = _hash(flow, code)  # committed by the request, with the step passed
    flow.code_expires_at = expires_at
    flow.code_sent_at = now
    _audit(flow, "code_sent")
    return None


def _iso(instant: datetime) -> str:
    return instant.isoformat() + "Z"


def _audit(flow: LoginFlow, event: str, **fields) -> None:
    audit.record(event, user_id=flow.user_id, nir=flow.user.nir, client_id=flow_client(flow), **fields)


def record_failure(flow: LoginFlow, case: int, step: str = "code", **detail) -> None:
    _audit(flow, "login_failed", case=case, detail={"step": step, **detail})


class Result(enum.Enum):
    OK = "ok"
    NO_CODE = "no_code"     # none pending (never sent, or already used)
    EXPIRED = "expired"     # case 2
    WRONG = "wrong"         # case 4
    LOCKED = "locked"       # case 5


@dataclass
class Verdict:
    result: Result
    locked_until: datetime | None = None


def verify(flow: LoginFlow, submitted: str) -> Verdict:
    """Check ``submitted`` against the pending code, once an attempt has been reserved (case 5).

    The attempt is taken before the comparison, so that however many requests race,
    at most ``MAX_CODE_FAILURES`` codes are compared per lock period. A right code
    releases the counter (and the lock its attempt may have set) and is consumed by
    one conditional UPDATE: exactly one of many parallel submissions wins.
    """
    if flow.code_hash is None:
        return Verdict(Result.NO_CODE)
    if flow.code_expires_at is None or utcnow() >= flow.code_expires_at:
        record_failure(flow, 2)
        return Verdict(Result.EXPIRED)  # says nothing about the code: not counted
    key = policy.user_key(flow.user_id)
    attempt = limits.reserve(policy.code_failures(), key, commit=False)
    if not attempt.allowed:  # recorded in the transaction of the counter's statement
        record_failure(flow, 5, refused=True)
        limits.commit_keeping_loaded()
        return Verdict(Result.LOCKED, attempt.locked_until)  # not compared, not counted
    limits.commit_keeping_loaded()  # the reservation holds for the other workers while this one compares
    # The pending code is read again after the reservation (the code alone, not the whole
    # flow): one a parallel submission used meanwhile is not compared at all.
    connection = db.session.connection()
    pending = connection.execute(_PENDING, {"flow_id": flow.id}).scalar()
    if pending is None:
        limits.give_back(policy.code_failures(), key)  # nothing was compared
        return Verdict(Result.NO_CODE)
    set_committed_value(flow, "code_hash", pending)
    if not matches(flow, submitted):  # recorded by the request's commit, right after the reservation's
        if attempt.locked_until:  # the last attempt: case 5
            record_failure(flow, 5)
            _audit(flow, "lock_set", case=5, detail={"kind": "code", "until": _iso(attempt.locked_until)})
            return Verdict(Result.LOCKED, attempt.locked_until)
        record_failure(flow, 4)
        return Verdict(Result.WRONG)
    consumed = connection.execute(_CONSUME, {"flow_id": flow.id, "submitted_hash": _hash(flow, submitted)})
    if consumed.rowcount != 1:  # a parallel submission of the same code won
        db.session.rollback()
        limits.give_back(policy.code_failures(), key)  # the right code: not a failure
        return Verdict(Result.NO_CODE)
    set_committed_value(flow, "code_hash", None)  # as written: the flow's own write leaves them alone
    set_committed_value(flow, "code_expires_at", None)
    limits.release(policy.code_failures(), key)
    return Verdict(Result.OK)


def mask_email(email: str) -> str:
    """``jeanne.martin@exemple.fr`` → ``j***@exemple.fr``."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"
