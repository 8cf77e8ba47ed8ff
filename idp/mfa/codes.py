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
from sqlalchemy import update

from .. import crypto, limits
from ..extensions import db
from ..login import policy
from ..mail import render_mail, send_mail
from ..models import LoginFlow, utcnow

PURPOSE = "security-code"


def _hash(flow: LoginFlow, code: str) -> str:
    return crypto.keyed_hash(PURPOSE, f"{flow.id}:{code}")


def matches(flow: LoginFlow, submitted: str) -> bool:
    """Whether ``submitted`` is the code pending for ``flow`` (constant-time comparison of keyed hashes)."""
    return flow.code_hash is not None and pyotp.utils.strings_equal(_hash(flow, submitted), flow.code_hash)


def lifetime_minutes() -> int:
    """``CODE_LIFETIME`` as the pages and the mail say it (whole minutes, at least one)."""
    return max(1, current_app.config["IDP_CODE_LIFETIME"] // 60)


def generate() -> str:
    return pyotp.HOTP(pyotp.random_base32(), digits=6).at(0)


def issue(flow: LoginFlow) -> datetime | None:
    """Send a new code for ``flow``; return the end of the quota block instead (case 3)."""
    user = flow.user
    blocked = limits.hit(policy.code_quota(), policy.user_key(user.id), commit=False)
    if blocked is not None:
        db.session.commit()
        return blocked
    code = generate()
    now = utcnow()
    flow.code_hash = _hash(flow, code)
    flow.code_expires_at = now + timedelta(seconds=current_app.config["IDP_CODE_LIFETIME"])
    flow.code_sent_at = now
    db.session.commit()  # the count and the new code together
    subject, text, html = render_mail("security_code", code=code, user=user, expires_at=flow.code_expires_at,
                                      lifetime_minutes=lifetime_minutes())
    send_mail(user.email, subject, text, html)
    return None


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
    key = policy.user_key(flow.user_id)
    lock = limits.locked_until(policy.code_failures(), key)
    if lock is not None:
        return Verdict(Result.LOCKED, lock)  # attempts during a lock are not counted
    if flow.code_hash is None:
        return Verdict(Result.NO_CODE)
    if flow.code_expires_at is None or utcnow() >= flow.code_expires_at:
        return Verdict(Result.EXPIRED)
    candidate = _hash(flow, submitted)
    if not pyotp.utils.strings_equal(candidate, flow.code_hash):
        lock = limits.hit(policy.code_failures(), key)
        return Verdict(Result.LOCKED, lock) if lock else Verdict(Result.WRONG)
    consumed = db.session.execute(
        update(LoginFlow)
        .where(LoginFlow.id == flow.id, LoginFlow.code_hash == candidate)
        .values(code_hash=None, code_expires_at=None)
    )
    if consumed.rowcount != 1:
        db.session.rollback()
        return Verdict(Result.NO_CODE)
    return Verdict(Result.OK)  # the counters are reset when the login completes


def mask_email(email: str) -> str:
    """``jeanne.martin@exemple.fr`` → ``j***@exemple.fr``."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"
