"""What a relying party learns about a user: pairwise ``sub`` and claims by scope."""

from __future__ import annotations

from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oidc.core import UserInfo

from .. import crypto
from ..models import Client, User

#: Scopes a client may be registered for, and what each one reveals.
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "openid": ("sub",),
    "profile": ("given_name", "family_name", "birthdate", "gender"),
    "email": ("email", "email_verified"),
    "affiliation": ("affiliation",),
}
SUPPORTED_SCOPES = tuple(SCOPE_CLAIMS)
USER_SCOPES = SUPPORTED_SCOPES  # every scope above is about a person
SUPPORTED_CLAIMS = tuple(dict.fromkeys(c for claims in SCOPE_CLAIMS.values() for c in claims))


def pairwise_sub(user: User, client: Client) -> str:
    """A stable subject per (user, client): two partner sites cannot correlate a person.

    HMAC of the server secret, the client and the user id; the NIR is never used.
    """
    return crypto.b64url_hmac("pairwise-sub", f"{client.client_id}:{user.id}")


def user_claims(user: User, scope: str) -> UserInfo:
    """Claims for the scopes granted; ``sub`` is added by the caller, per client."""
    scopes = set(scope_to_list(scope or ""))
    info: dict = {}
    if "profile" in scopes:
        info.update(
            given_name=user.given_name,
            family_name=user.family_name,
            birthdate=user.birth_date.isoformat(),
        )
        if user.gender:
            info["gender"] = user.gender
    if "email" in scopes and user.email:
        info.update(email=user.email, email_verified=bool(user.email_verified))
    if "affiliation" in scopes:
        info["affiliation"] = {
            "regime": {"code": user.regime_code, "name": user.regime_name},
            "caisse": user.caisse,
            "status": user.affiliation,
        }
    return UserInfo(info)
