"""Trusted devices: a browser that skips the security code for six months.

The browser keeps a random 256-bit token in an HttpOnly, SameSite=Lax cookie
(Secure over HTTPS); the server keeps its keyed hash, bound to one user. Another
browser, or one that refused the cookie, has no token and is asked for a code
(FAQ of the seed). Changing the password revokes every device of the user.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, g, request
from sqlalchemy import bindparam, insert, select, update

from .. import cookies, crypto, sessions
from ..extensions import db
from ..models import TrustedDevice, utcnow

COOKIE = "idp_device"
PURPOSE = "trusted-device"


_BY_TOKEN = select(TrustedDevice).where(TrustedDevice.token_hash == bindparam("token_hash"))
_INSERT = insert(TrustedDevice.__table__)


def _lifetime() -> int:
    return current_app.config["IDP_TRUSTED_DEVICE_LIFETIME"]


def recognised(user_id: int) -> TrustedDevice | None:
    """The live trusted device of ``user_id`` this browser carries, if any.

    Looked up once per request: the journey asks at every step it evaluates.
    """
    memo = g.setdefault("idp_trusted_devices", {})
    if user_id not in memo:
        memo[user_id] = _lookup(user_id)
    return memo[user_id]


def _lookup(user_id: int) -> TrustedDevice | None:
    device = this_browser(user_id)
    if device is not None:
        device.last_used_at = utcnow()
    return device


def this_browser(user_id: int) -> TrustedDevice | None:
    """The live trusted device of ``user_id`` this browser carries, not marked as used (« ce navigateur »)."""
    token = request.cookies.get(cookies.name(COOKIE))
    if not token or len(token) > 100:
        return None
    device = db.session.scalar(_BY_TOKEN, {"token_hash": crypto.keyed_hash(PURPOSE, token)})
    if device is None or device.user_id != user_id or device.revoked_at is not None or utcnow() >= device.expires_at:
        return None
    return device


def label_for(agent: str | None) -> str | None:
    """Browser and system read from a User-Agent (ua-parser): ``Firefox 121, Windows 10``.

    Kept instead of the User-Agent itself: what the person needs to recognise the
    browser in the security space, and less of the browser's fingerprint stored.
    """
    if not agent:
        return None
    from ua_parser import parse

    result = parse(agent[:1000])
    parts = []
    for found in (result.user_agent, result.os):
        if found is not None and found.family and found.family != "Other":
            parts.append(" ".join(p for p in (found.family, found.major) if p))
    return ", ".join(parts)[:200] or None


def describe(label: str | None) -> str | None:
    """The label shown for a device; one trusted before labels were parsed holds the raw User-Agent."""
    return label_for(label) if label and "/" in label else label


def live(user_id: int) -> list[TrustedDevice]:
    """The person's trusted browsers still in force, the most recently used first."""
    return list(db.session.scalars(
        select(TrustedDevice)
        .where(TrustedDevice.user_id == user_id, TrustedDevice.revoked_at.is_(None),
               TrustedDevice.expires_at > utcnow())
        .order_by(TrustedDevice.created_at.desc(), TrustedDevice.id.desc())
    ))


def revoke(user_id: int, device_id: int) -> bool:
    """Forget one trusted browser of the person; False when it was not theirs or already revoked."""
    result = db.session.execute(
        update(TrustedDevice)
        .where(TrustedDevice.id == device_id, TrustedDevice.user_id == user_id, TrustedDevice.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return result.rowcount == 1


def trust(user_id: int) -> None:
    """Remember this browser for ``user_id``; the cookie is set on the response."""
    token = crypto.random_token(32)
    agent = label_for(request.user_agent.string)
    now = utcnow()  # one instant: the lifetime is exact, not off by the second that flush may cross
    # One INSERT, committed with the login it ends (rolled back with it by a double submit).
    db.session.connection().execute(_INSERT, {
        "user_id": user_id, "token_hash": crypto.keyed_hash(PURPOSE, token), "label": agent,
        "created_at": now, "expires_at": now + timedelta(seconds=_lifetime()),
    })
    g.idp_device_cookie = token


def revoke_all(user_id: int) -> int:
    """Forget every trusted browser of the user (password change, administrator)."""
    result = db.session.execute(
        update(TrustedDevice)
        .where(TrustedDevice.user_id == user_id, TrustedDevice.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return result.rowcount


def apply_cookie(response):
    """``after_request``: send the device cookie decided during the request."""
    token = g.pop("idp_device_cookie", None)
    if token:
        response.set_cookie(cookies.name(COOKIE), token, max_age=_lifetime(), **sessions.cookie_options())
    return response
