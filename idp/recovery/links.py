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
import time
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Callable

from flask import current_app, url_for
from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import aliased

from .. import audit, crypto, limits, sessions
from ..extensions import db
from ..login import policy
from ..mail import MailError, render_mail, send_mail
from ..mfa import devices
from ..models import Grant, LoginFlow, User, utcnow
from ..oidc import backchannel
from ..models.recovery import PasswordReset

log = logging.getLogger(__name__)

PURPOSE = "password-reset"
MAX_TOKEN_LENGTH = 100


def lifetime_minutes() -> int:
    return max(1, current_app.config["IDP_RESET_LINK_LIFETIME"] // 60)


_senders: dict[int, ThreadPoolExecutor] = {}
_senders_lock = threading.Lock()


#: How long a reset-link job waits before it starts: the request that queued it has answered by
#: then, so the job's work (rendering, SMTP, writes) does not slow that answer, whose time must be
#: the same whether an account matched or not. (A hook on the response's close is not enough:
#: servers skip it when the client drops the connection first.)
JOB_DELAY_SECONDS = 0.05


def send_later(job: Callable[[], None], delay: float = 0.0) -> None:
    """Run ``job`` on a small pool of mail threads of this process: the response does not wait for it.

    So the time a response takes says nothing about whether a mail was sent
    (no account enumeration by timing), and a slow mail server slows no page.
    The pool is made per process, after a fork (the server's workers).
    """
    pid = os.getpid()
    with _senders_lock:
        pool = _senders.get(pid)
        if pool is None:
            pool = _senders[pid] = ThreadPoolExecutor(max_workers=4, thread_name_prefix="idp-mail")
    future = pool.submit(lambda: (time.sleep(delay), job())) if delay else pool.submit(job)
    with _senders_lock:
        _pending.add(future)
    future.add_done_callback(_forget)


#: The jobs queued or running in this process (see :func:`wait_for_jobs`).
_pending: set = set()


def _forget(future) -> None:
    with _senders_lock:
        _pending.discard(future)


def wait_for_jobs(timeout: float = 10.0) -> bool:
    """Wait until the mail jobs of this process are done; False if some still run after ``timeout`` s.

    For whoever must know that no job writes to the database any more: the tests
    before they empty the tables between two tests (a late reset-link row would
    otherwise belong to the next test's person, whose id may be the same).
    """
    with _senders_lock:
        pending = list(_pending)
    done, not_done = wait(pending, timeout=timeout) if pending else ((), ())
    return not not_done


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


def issue(user: User, quota: limits.Policy, quota_key: str) -> Callable[[], None]:
    """The job that mails a new link to ``user`` (for :func:`send_later`).

    The request that asks for it does the same database work whether an account
    matched or not (the quota reservation and the lookup); the link itself is
    written here. Its row goes in before the mail, so the link works as soon as the
    mail arrives. Once the mail has left, the older links are revoked; when the mail
    server refuses it, the new row is deleted and the quota reservation given back:
    the link delivered before stays the valid one, and the outage costs nothing.
    """
    token = crypto.random_token(32)
    token_hash = crypto.keyed_hash(PURPOSE, token)
    expires_at = utcnow() + timedelta(seconds=current_app.config["IDP_RESET_LINK_LIFETIME"])
    # The token in the fragment: browsers never send it, so no log ever holds a live link.
    link = current_app.config["IDP_ISSUER"] + url_for("recovery.open_link") + "#" + token
    user_id, email = user.id, user.email
    context = dict(given_name=user.given_name, family_name=user.family_name, link=link, expires_at=expires_at,
                   lifetime_minutes=lifetime_minutes())
    app = current_app._get_current_object()

    def run() -> None:
        with app.app_context():
            try:
                reset = PasswordReset(user_id=user_id, token_hash=token_hash, expires_at=expires_at)
                db.session.add(reset)
                db.session.commit()
                try:
                    send_mail(email, *render_mail("password_reset", **context))
                except MailError as exc:
                    log.warning("Reset link mail not sent (user %s): %s", user_id, exc)
                    db.session.execute(delete(PasswordReset).where(PasswordReset.id == reset.id))
                    limits.give_back(quota, quota_key)
                    db.session.commit()
                    return
                db.session.execute(
                    update(PasswordReset)
                    .where(PasswordReset.user_id == user_id, PasswordReset.id < reset.id,
                           PasswordReset.used_at.is_(None), PasswordReset.revoked_at.is_(None))
                    .values(revoked_at=utcnow())
                )
                db.session.commit()
            except Exception:  # never let a mail break the worker
                log.exception("Reset link not issued (user %s)", user_id)
            finally:
                db.session.remove()

    return run


def _newer():
    newer = aliased(PasswordReset)
    return exists().where(newer.user_id == PasswordReset.user_id, newer.id > PasswordReset.id)


def find_live(token: str) -> PasswordReset | None:
    """The link of ``token`` if it can still be used: not used, not revoked, not expired, the newest."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return db.session.scalar(
        select(PasswordReset).where(PasswordReset.token_hash == crypto.keyed_hash(PURPOSE, token), *_live())
    )


def find_live_by_id(reset_id: int) -> PasswordReset | None:
    """The link of row ``reset_id`` (kept in the signed session once its token was posted) if still usable."""
    return db.session.scalar(select(PasswordReset).where(PasswordReset.id == reset_id, *_live()))


def _live() -> tuple:
    """Not used, not revoked, not expired, the newest of its account."""
    return (PasswordReset.used_at.is_(None), PasswordReset.revoked_at.is_(None),
            PasswordReset.expires_at > utcnow(), ~_newer())


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


def change_password(user: User, password_hash: str) -> tuple[datetime, backchannel.Announcement]:
    """Step 6: the new password, and everything the old one opened is closed.

    Trusted browsers, grants (so refresh and access tokens), login sessions,
    logins in progress past the password, other reset links; the wrong-password
    lock of the NIR is lifted. The caller commits, then sends the announcement
    returned: every relying party that took part in an ended session gets a
    logout token (OIDC Back-Channel Logout), in the background.
    """
    now = utcnow()
    user.password_hash = password_hash
    user.password_changed_at = now
    forgotten = devices.revoke_all(user.id)
    ended = sessions.end_sessions(user.id)  # with their grants
    announcement = backchannel.sessions_ended(ended)
    revoked = db.session.execute(update(Grant).where(Grant.user_id == user.id, Grant.revoked_at.is_(None))
                                 .values(revoked_at=now)).rowcount
    db.session.execute(update(LoginFlow).where(LoginFlow.user_id == user.id, LoginFlow.completed_at.is_(None),
                                               LoginFlow.expires_at > now).values(expires_at=now))
    db.session.execute(update(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None),
                                                   PasswordReset.revoked_at.is_(None)).values(revoked_at=now))
    limits.unlock(policy.password_failures(), policy.nir_key(user.nir))
    audit.record("password_reset_done", user_id=user.id)
    if forgotten:
        audit.record("trusted_device_revoked", user_id=user.id, detail={"count": forgotten, "reason": "password-reset"})
    if revoked or ended:
        audit.record("tokens_revoked", user_id=user.id,
                     detail={"sessions": len(ended), "grants": revoked, "reason": "password-reset"})
    return now, announcement


def changed_mail(user: User, changed_at: datetime) -> Callable[[], None] | None:
    if not user.email:
        return None
    return mail_job("password_changed", user.email, given_name=user.given_name, family_name=user.family_name,
                    changed_at=changed_at)
