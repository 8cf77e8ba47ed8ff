"""The provider's data model, one module per area.

Every table is created by an Alembic migration (``idp/migrations``), never by
``create_all``. Secrets are never stored as such: columns named ``*_hash`` hold a
keyed hash (see :mod:`idp.crypto`), private keys are encrypted.
"""

from .clock import utcnow
from .users import EmailValidation, User
from .devices import TrustedDevice
from .limits import Limit
from .clients import Client
from .assertions import UsedAssertion
from .grants import AuthorizationCode, Grant, Token
from .keys import SigningKey
from .sessions import BrowserSession, LoginFlow
from .recovery import CaptchaChallenge, PasswordReset
from .audit import AuditEvent
from .mfa import RecoveryCode, TotpCredential

__all__ = [
    "utcnow",
    "User",
    "EmailValidation",
    "TrustedDevice",
    "Limit",
    "Client",
    "UsedAssertion",
    "Grant",
    "AuthorizationCode",
    "Token",
    "SigningKey",
    "BrowserSession",
    "LoginFlow",
    "CaptchaChallenge",
    "PasswordReset",
    "AuditEvent",
    "TotpCredential",
    "RecoveryCode",
]
