"""Mails that tell the person about their account (issue 12): a new login, a recovery code used.

A notification never stops what it notifies: when the mail server refuses it the
login goes on, the failure is logged (never the address) and recorded in the audit
trail (``notification_failed``). Each mail is sent once the login's own changes are
committed, so that no database transaction stays open while the SMTP server answers.
"""

from __future__ import annotations

import re

from flask import current_app, request

from .. import audit
from ..extensions import db
from ..mail import MailError, render_mail, send_mail
from ..models import Client, User, utcnow

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


def _send(kind: str, user: User, template: str, **context) -> bool:
    """Send one notification; on failure log and audit it (committed at once) and go on."""
    try:
        subject, text, html = render_mail(template, user=user, **context)
        send_mail(user.email, subject, text, html)
        return True
    except MailError:
        current_app.logger.warning("Notification mail %s could not be sent (user %s)", kind, user.id)
        audit.record("notification_failed", user_id=user.id, detail={"kind": kind})
        db.session.commit()
        return False


def new_login(user: User, client_id: int) -> bool:
    """« Nouvelle connexion à votre compte ameli »: a login completed in a browser not trusted before."""
    if not current_app.config["IDP_NEW_LOGIN_MAIL"] or not (user.email and user.email_verified):
        return False
    client = db.session.get(Client, client_id)
    browser, system = browser_of(request.user_agent.string)
    return _send("new-login", user, "new_login", at=utcnow(), client_name=client.name if client else None,
                 browser=browser, system=system)


def recovery_code_used(user: User, remaining: int) -> bool:
    """A recovery code stood in for the second factor: the person is told, and how many are left."""
    if not (user.email and user.email_verified):
        return False
    return _send("recovery-code-used", user, "recovery_code_used", at=utcnow(), remaining=remaining)
