"""Mails that tell the person about their account (issue 12): a new login, a recovery code used.

A notification never stops what it notifies: when the mail server refuses it the
login goes on, the failure is logged (never the address) and recorded in the audit
trail (``notification_failed``). Each mail is sent once the login's own changes are
committed, so that no database transaction stays open while the SMTP server answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import current_app, request
from sqlalchemy import bindparam, select

from .. import audit
from ..extensions import db
from ..mail import MailError, render_mail, send_mail
from ..models import Client, User, utcnow

_CLIENT_NAME = select(Client.name).where(Client.id == bindparam("id"))

#: (token in the User-Agent, name shown), first match wins: Edge and Opera also say Chrome, Chrome also says Safari.
_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("FxiOS/", "Firefox"),
             ("SamsungBrowser/", "Samsung Internet"), ("CriOS/", "Chrome"), ("Chromium/", "Chromium"),
             ("Chrome/", "Chrome"), ("Safari/", "Safari"))
_SYSTEMS = (("Windows", "Windows"), ("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iPadOS"),
            ("CrOS", "ChromeOS"), ("Mac OS X", "macOS"), ("Macintosh", "macOS"), ("Linux", "Linux"))


def browser_of(user_agent: str | None) -> tuple[str | None, str | None]:
    """``(browser, system)`` named from a User-Agent header (either None when not recognised)."""
    agent = user_agent or ""
    browser = next((name for token, name in _BROWSERS if token in agent), None)
    system = next((name for token, name in _SYSTEMS if re.search(re.escape(token), agent)), None)
    return browser, system


@dataclass(frozen=True)
class Notice:
    """A notification rendered while what it tells is loaded, sent once that is committed."""

    kind: str
    user_id: int
    to: str
    subject: str
    text: str
    html: str | None

    def send(self) -> bool:
        """Send it; on failure log and audit it (committed at once) and go on."""
        try:
            send_mail(self.to, self.subject, self.text, self.html)
            return True
        except MailError:
            current_app.logger.warning("Notification mail %s could not be sent (user %s)", self.kind, self.user_id)
            audit.record("notification_failed", user_id=self.user_id, detail={"kind": self.kind})
            db.session.commit()
            return False


def _notice(kind: str, user: User, template: str, **context) -> Notice:
    subject, text, html = render_mail(template, user=user, **context)
    return Notice(kind, user.id, user.email, subject, text, html)


def new_login(user: User, client_id: int | None) -> Notice | None:
    """« Nouvelle connexion à votre compte ameli »: a login completed in a browser not trusted before.

    Prepared before the login's commit, while the person is loaded: one statement of its
    own, the partner site's name. None when it is not due.
    """
    if not current_app.config["IDP_NEW_LOGIN_MAIL"] or not (user.email and user.email_verified):
        return None
    # None: the security space's own login, no partner site to name.
    client_name = db.session.execute(_CLIENT_NAME, {"id": client_id}).scalar() if client_id is not None else None
    browser, system = browser_of(request.user_agent.string)
    return _notice("new-login", user, "new_login", at=utcnow(), client_name=client_name,
                   browser=browser, system=system)


def recovery_code_used(user: User, remaining: int) -> bool:
    """A recovery code stood in for the second factor: the person is told, and how many are left."""
    if not (user.email and user.email_verified):
        return False
    return _notice("recovery-code-used", user, "recovery_code_used", at=utcnow(), remaining=remaining).send()
