"""The numbers of the login journey's policy, read from the settings.

Each :class:`~idp.limits.Policy` names a counter kind; its key is a NIR hash
(case 6: counted per NIR typed, whether an account exists or not) or a user id.
"""

from __future__ import annotations

from flask import current_app

from .. import crypto, nir
from ..limits import Policy


def _cfg(name: str) -> int:
    return current_app.config[f"IDP_{name}"]


def password_failures() -> Policy:
    """Case 6: wrong passwords in a row lock the NIR typed for a few minutes."""
    return Policy("password", _cfg("MAX_PASSWORD_FAILURES"), _cfg("LOCK_DURATION"))


def code_failures() -> Policy:
    """Case 5: wrong codes in a row lock the account for a few minutes."""
    return Policy("code", _cfg("MAX_CODE_FAILURES"), _cfg("LOCK_DURATION"))


def code_quota() -> Policy:
    """Case 3: one request more than the quota within the window blocks for an hour."""
    return Policy("code-quota", _cfg("CODE_QUOTA") + 1, _cfg("CODE_QUOTA_BLOCK"), _cfg("CODE_QUOTA_WINDOW"),
                  locking_event_allowed=False)


def nir_key(raw_nir: str) -> str:
    return crypto.keyed_hash("nir-counter", nir.normalize(raw_nir))


def user_key(user_id: int) -> str:
    return f"user:{user_id}"
