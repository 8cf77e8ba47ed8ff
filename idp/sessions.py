"""The provider's login session (single sign-on between partner sites, ``prompt=none``).

A random 256-bit identifier in an HttpOnly cookie; the database keeps its keyed
hash, the user, when and how they authenticated. The session ends after an idle
time and after an absolute time (both settings), and on logout.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, g, request
from sqlalchemy import bindparam, insert, select, update

from . import cookies, crypto
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
    return cookies.options()


def current() -> BrowserSession | None:
    """The live session of this browser, or None (memoised per request)."""
    if "idp_browser_session" in g:
        return g.idp_browser_session
    found = None
    sid = request.cookies.get(cookies.name(COOKIE))
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

    The public ``sid`` (back-channel logout) is new, except when the same person logs in
    again in this browser (``prompt=login``, ``max_age``): the relying parties that took
    part in the old session keep knowing it by the same ``sid``.

    The cookie is set on whatever response this request ends with (:func:`apply_cookie`).
    The row is written by one INSERT, committed with the authorization code that
    follows; the object returned holds its values but is not in the ORM session
    (changing it writes nothing: :func:`end` and :func:`touch` are for loaded rows).
    """
    old = current()
    public_sid = None
    if old is not None:
        old.ended_at = utcnow()
        if old.user_id == user_id:
            public_sid = old.sid
    sid = crypto.random_token(32)
    now = utcnow()
    values = {"sid_hash": crypto.keyed_hash(PURPOSE, sid), "sid": public_sid or new_public_sid(), "user_id": user_id,
              "auth_time": auth_time, "amr": amr, "acr": acr, "created_at": now, "last_seen_at": now}
    row = BrowserSession(**values)
    row.id = db.session.connection().execute(_INSERT, values).scalar_one()
    g.idp_browser_session = row
    g.idp_session_cookie = sid
    return row


def new_public_sid() -> str:
    """A session's ``sid``: 128 random bits, unrelated to the cookie (a token may show it, nothing opens with it)."""
    return crypto.random_token(16)


def end(commit: bool = True) -> list[str]:
    """End this browser's session and clear its cookie; the ``sid`` it had if this request ended it."""
    row = current()
    ended = end_sessions(row.user_id, row.id) if row is not None else []
    if commit:
        db.session.commit()
    g.idp_browser_session = None
    g.idp_session_cookie = ""
    return ended


_END = (update(_table).where(_table.c.user_id == bindparam("person"), _table.c.ended_at.is_(None))
        .values(ended_at=bindparam("now")).returning(_table.c.sid))


def end_sessions(user_id: int, session_id: int | None = None) -> list[str]:
    """End the person's sessions not ended yet (or only ``session_id``): one UPDATE, not committed.

    Returns the ``sid`` of each session this statement ended (not those a parallel request
    ended first), so that each session's end is announced once (:mod:`idp.oidc.backchannel`).
    """
    statement = _END if session_id is None else _END.where(_table.c.id == session_id)
    rows = db.session.execute(statement, {"person": user_id, "now": utcnow()}).all()
    return list(dict.fromkeys(sid for (sid,) in rows if sid))


def apply_cookie(response):
    """``after_request``: send the cookie that :func:`start` or :func:`end` decided."""
    sid = g.pop("idp_session_cookie", None)
    if sid:
        response.set_cookie(cookies.name(COOKIE), sid, max_age=_cfg("SESSION_ABSOLUTE_LIFETIME"), **cookie_options())
    elif sid == "":
        response.delete_cookie(cookies.name(COOKIE), **cookie_options())
    return response
