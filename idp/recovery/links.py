"""Reset links (step 4) and the password change they allow (step 6).

A link carries a random 256-bit token; the database keeps its keyed hash. It is
valid ``RESET_LINK_LIFETIME`` seconds, once, and only the newest link of an
account works: sending a new one revokes the older ones, and consuming a link
checks, in the same conditional UPDATE, that no newer one exists. Opening the
link (a mail scanner does) consumes nothing; the form's POST does.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Callable

from flask import current_app, url_for
from sqlalchemy import exists, select, update
from sqlalchemy.orm import aliased

from .. import crypto, limits
from ..extensions import db
from ..login import policy
from ..mail import MailError, render_mail, send_mail
from ..mfa import devices
from ..models import BrowserSession, Grant, LoginFlow, User, utcnow
from ..models.recovery import PasswordReset

log = logging.getLogger(__name__)

PURPOSE = "password-reset"
MAX_TOKEN_LENGTH = 100
NO_ACCOUNT = 0  # a user id that never exists: the same statements run, and match nothing


def lifetime_minutes() -> int:
    return max(1, current_app.config["IDP_RESET_LINK_LIFETIME"] // 60)


_senders: dict[int, ThreadPoolExecutor] = {}
_senders_lock = threading.Lock()


def send_later(job: Callable[[], None]) -> None:
    """Run ``job`` on a small pool of mail threads of this process: the response does not wait for it.

    So the time a response takes says nothing about whether a mail was sent
    (no account enumeration by timing), and a slow mail server slows no page.
    The pool is made per process, after a fork (gunicorn workers).
    """
    pid = os.getpid()
    with _senders_lock:
        pool = _senders.get(pid)
        if pool is None:
            pool = _senders[pid] = ThreadPoolExecutor(max_workers=4, thread_name_prefix="idp-mail")
    pool.submit(job)


def mail_job(template: str, to: str, **context) -> Callable[[], None]:
    """Render and send a mail, in an application context of its own (for :func:`send_later`)."""
    app = current_app._get_current_object()

    def run() -> None:
        with app.app_context():
            try:
                send_mail(to, *render_mail(template, **context))
            except MailError as exc:
                log.warning("Mail %s not sent: %s", template, exc)
            except Exception:  # never let a mail break the worker
                log.exception("Mail %s not sent", template)

    return run


def issue(user: User | None) -> Callable[[], None] | None:
    """A new link for ``user`` (the older ones stop working); returns the job that mails it.

    With ``user`` None (no account for that NIR and birth date) the same work is
    done on the database, and there is nothing to send.
    """
    token = crypto.random_token(32)
    token_hash = crypto.keyed_hash(PURPOSE, token)
    now = utcnow()
    expires_at = now + timedelta(seconds=current_app.config["IDP_RESET_LINK_LIFETIME"])
    db.session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == (user.id if user else NO_ACCOUNT), PasswordReset.used_at.is_(None),
               PasswordReset.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if user is not None:
        db.session.add(PasswordReset(user_id=user.id, token_hash=token_hash, expires_at=expires_at))
    db.session.commit()
    if user is None:
        return None
    link = current_app.config["IDP_ISSUER"] + url_for("recovery.new_password", token=token)
    return mail_job("password_reset", user.email, given_name=user.given_name, family_name=user.family_name,
                    link=link, expires_at=expires_at, lifetime_minutes=lifetime_minutes())


def _newer():
    newer = aliased(PasswordReset)
    return exists().where(newer.user_id == PasswordReset.user_id, newer.id > PasswordReset.id)


def find_live(token: str) -> PasswordReset | None:
    """The link of ``token`` if it can still be used: not used, not revoked, not expired, the newest."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return db.session.scalar(
        select(PasswordReset).where(
            PasswordReset.token_hash == crypto.keyed_hash(PURPOSE, token),
            PasswordReset.used_at.is_(None),
            PasswordReset.revoked_at.is_(None),
            PasswordReset.expires_at > utcnow(),
            ~_newer(),
        )
    )


def consume(reset: PasswordReset) -> bool:
    """Use the link; True for exactly one caller however many race (one conditional UPDATE)."""
    result = db.session.execute(
        update(PasswordReset)
        .where(
            PasswordReset.id == reset.id,
            PasswordReset.used_at.is_(None),
            PasswordReset.revoked_at.is_(None),
            PasswordReset.expires_at > utcnow(),
            ~_newer(),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def change_password(user: User, password_hash: str) -> datetime:
    """Step 6: the new password, and everything the old one opened is closed.

    Trusted browsers, grants (so refresh and access tokens), login sessions,
    logins in progress past the password, other reset links; the wrong-password
    lock of the NIR is lifted. The caller commits.
    """
    now = utcnow()
    user.password_hash = password_hash
    user.password_changed_at = now
    devices.revoke_all(user.id)
    db.session.execute(update(Grant).where(Grant.user_id == user.id, Grant.revoked_at.is_(None))
                       .values(revoked_at=now))
    db.session.execute(update(BrowserSession).where(BrowserSession.user_id == user.id,
                                                    BrowserSession.ended_at.is_(None)).values(ended_at=now))
    db.session.execute(update(LoginFlow).where(LoginFlow.user_id == user.id, LoginFlow.completed_at.is_(None),
                                               LoginFlow.expires_at > now).values(expires_at=now))
    db.session.execute(update(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None),
                                                   PasswordReset.revoked_at.is_(None)).values(revoked_at=now))
    limits.unlock(policy.password_failures(), policy.nir_key(user.nir))
    return now


def changed_mail(user: User, changed_at: datetime) -> Callable[[], None] | None:
    if not user.email:
        return None
    return mail_job("password_changed", user.email, given_name=user.given_name, family_name=user.family_name,
                    changed_at=changed_at)
