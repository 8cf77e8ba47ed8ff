"""The provider's login session (single sign-on between partner sites, ``prompt=none``).

A random 256-bit identifier in an HttpOnly cookie; the database keeps its keyed
hash, the user, when and how they authenticated. The session ends after an idle
time and after an absolute time (both settings), and on logout.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, g, request
from sqlalchemy import bindparam, insert, select, update

from . import crypto
from .extensions import db
from .models import BrowserSession, utcnow

COOKIE = "idp_session"
PURPOSE = "browser-session"


_table = BrowserSession.__table__
_INSERT = insert(_table).returning(_table.c.id)
_BY_SID = select(BrowserSession).where(BrowserSession.sid_hash == bindparam("sid_hash"))


def _cfg(name: str):
    return current_app.config[f"IDP_{name}"]


def cookie_options() -> dict:
    return {
        "httponly": True,
        "samesite": "Lax",
        "secure": _cfg("ISSUER").startswith("https://"),
        "path": "/",
    }


def current() -> BrowserSession | None:
    """The live session of this browser, or None (memoised per request)."""
    if "idp_browser_session" in g:
        return g.idp_browser_session
    found = None
    sid = request.cookies.get(COOKIE)
    if sid and len(sid) < 100:
        row = db.session.scalar(_BY_SID, {"sid_hash": crypto.keyed_hash(PURPOSE, sid)})
        if row is not None and is_live(row):
            found = row
    g.idp_browser_session = found
    return found


def is_live(row: BrowserSession) -> bool:
    now = utcnow()
    return (
        row.ended_at is None
        and now - row.last_seen_at < timedelta(seconds=_cfg("SESSION_IDLE_LIFETIME"))
        and now - row.created_at < timedelta(seconds=_cfg("SESSION_ABSOLUTE_LIFETIME"))
    )


def touch(row: BrowserSession) -> None:
    row.last_seen_at = utcnow()
    db.session.commit()


def start(user_id: int, auth_time: int, amr: list[str], acr: str) -> BrowserSession:
    """Open a new session (the old one of this browser, if any, is ended).

    The cookie is set on whatever response this request ends with (:func:`apply_cookie`).
    The row is written by one INSERT, committed with the authorization code that
    follows; the object returned holds its values but is not in the ORM session
    (changing it writes nothing: :func:`end` and :func:`touch` are for loaded rows).
    """
    old = current()
    if old is not None:
        old.ended_at = utcnow()
    sid = crypto.random_token(32)
    now = utcnow()
    values = {"sid_hash": crypto.keyed_hash(PURPOSE, sid), "user_id": user_id, "auth_time": auth_time,
              "amr": amr, "acr": acr, "created_at": now, "last_seen_at": now}
    row = BrowserSession(**values)
    row.id = db.session.connection().execute(_INSERT, values).scalar_one()
    g.idp_browser_session = row
    g.idp_session_cookie = sid
    return row


def end() -> None:
    row = current()
    if row is not None:
        db.session.execute(update(BrowserSession).where(BrowserSession.id == row.id).values(ended_at=utcnow()))
        db.session.commit()
    g.idp_browser_session = None
    g.idp_session_cookie = ""


def apply_cookie(response):
    """``after_request``: send the cookie that :func:`start` or :func:`end` decided."""
    sid = g.pop("idp_session_cookie", None)
    if sid:
        response.set_cookie(COOKIE, sid, max_age=_cfg("SESSION_ABSOLUTE_LIFETIME"), **cookie_options())
    elif sid == "":
        response.delete_cookie(COOKIE, **cookie_options())
    return response
