"""Recovery codes: single-use codes that stand in for the second factor (issue 12).

Service API (the caller commits, so the audit row goes with the change):

``generate(user) -> list[str]``
    ``IDP_RECOVERY_CODES`` new codes (ten), replacing every earlier one (used or
    not); shown once, at enrolment or on « Générer de nouveaux codes ». Audited
    ``recovery_codes_generated``.
``consume(user, submitted) -> bool``
    Uses one code: ONE conditional statement, ``UPDATE recovery_codes SET used_at
    = :now WHERE user_id = :u AND code_hash = :h AND used_at IS NULL``; of many
    parallel submissions of one code exactly one matches a row. The caller counts
    the attempt first (:mod:`idp.limits`, case 5's counter at login).
``remaining(user) -> int``, ``remove(user)``.

Storage: a keyed hash (HMAC-SHA-256 under a key derived from the server secret,
:func:`idp.crypto.keyed_hash`), bound to the user id — not Argon2. A code is 12
characters drawn at random from 32 (60 bits), not a password a person chose: no
dictionary applies, online guessing is capped by case 5's lock (three wrong
codes), and an offline search of a stolen table needs the server secret first.
A keyed hash is also what lets one UPDATE find and consume the code by its hash;
salted Argon2 hashes would have to be loaded and verified one by one (ten
Argon2 computations per attempt) and could not be consumed atomically by value.
The comparison is the database's equality on the hash of the code: no timing
of our own code depends on how much of it was right.
"""

from __future__ import annotations

import secrets

from flask import current_app
from sqlalchemy import bindparam, delete, func, insert, select, update

from .. import audit, crypto
from ..extensions import db
from ..models import RecoveryCode, User, utcnow

PURPOSE = "recovery-code"
#: Crockford's base32: no I, L, O or U, so nothing reads as another character.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 12
_READS_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})

_table = RecoveryCode.__table__
_c = _table.c
_CONSUME = (
    update(_table)
    .where(_c.user_id == bindparam("u"), _c.code_hash == bindparam("h"), _c.used_at.is_(None))
    .values(used_at=bindparam("now"))
)
_REMAINING = select(func.count()).select_from(_table).where(_c.user_id == bindparam("u"), _c.used_at.is_(None))


def normalize(submitted: str) -> str | None:
    """What a person typed as the code it stands for (case, spaces and dashes ignored); None if it cannot be one."""
    value = "".join((submitted or "").upper().split()).replace("-", "").translate(_READS_AS)
    if len(value) != LENGTH or any(ch not in ALPHABET for ch in value):
        return None
    return value


def _hash(user_id: int, code: str) -> str:
    return crypto.keyed_hash(PURPOSE, f"{user_id}:{code}")


def _shown(code: str) -> str:
    return "-".join(code[i:i + 4] for i in range(0, LENGTH, 4))


def generate(user: User) -> list[str]:
    codes = ["".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
             for _ in range(current_app.config["IDP_RECOVERY_CODES"])]
    now = utcnow()
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.execute(insert(RecoveryCode), [
        {"user_id": user.id, "code_hash": _hash(user.id, code), "created_at": now} for code in codes])
    audit.record("recovery_codes_generated", user_id=user.id, nir=user.nir, detail={"count": len(codes)})
    return [_shown(code) for code in codes]


def consume(user: User, submitted: str) -> bool:
    code = normalize(submitted)
    if code is None:
        return False
    done = db.session.execute(_CONSUME, {"u": user.id, "h": _hash(user.id, code), "now": utcnow()})
    return done.rowcount == 1


def remaining(user: User) -> int:
    return db.session.execute(_REMAINING, {"u": user.id}).scalar() or 0


def remove(user: User) -> int:
    return db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id)).rowcount
