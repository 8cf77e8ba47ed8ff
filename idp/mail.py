"""The mailer of the whole product: security codes, validation and reset links.

Two functions:

* :func:`render_mail` renders ``templates/mail/<name>.txt`` (required) and
  ``templates/mail/<name>.html`` (optional) into ``(subject, text, html)``;
* :func:`send_mail` builds a ``multipart/alternative`` message and hands it to the
  transport named by ``IDP_MAIL_URL``; together: ``send_mail(to, *render_mail(...))``.

Transports (``IDP_MAIL_URL``):

* ``smtp://host:port?starttls=1&username=..&password=..&timeout=10`` — SMTP,
  optionally upgraded with STARTTLS (certificate verified); credentials may also be
  given as ``smtp://user:password@host:port`` (percent-encoded);
* ``smtps://host:port?...`` — SMTP over implicit TLS (port 465 by default);
* ``console://`` — development: one log line (recipient and subject) and the whole
  message kept as an ``.eml`` file under ``IDP_MAIL_OUTBOX_DIR`` (default
  ``instance/outbox/``), which the demo mailbox (``/demo/mailbox``) shows.

Mails carry secrets (codes, links): their body is never logged, and subjects must
never contain one (the subject is logged). A failure to send raises
:class:`MailError`; callers show a French page (``MailError.user_message``).

Template convention: the ``.txt`` template defines the subject in
``{% block subject %}...{% endblock %}``, rendered alone and whitespace-collapsed.
Templates extend ``mail/base.txt`` / ``mail/base.html``, which never output the
subject block in the body (``mail/base.html`` puts it in ``<title>`` through the
``subject`` variable). Both templates receive the caller's context plus
``issuer`` (the public base URL, to build absolute links: there is no request to
build them from) and, for the HTML one, ``subject``.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import smtplib
import ssl
from datetime import datetime, timezone
from email import utils as email_utils
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app
from jinja2 import TemplateNotFound

from . import config

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
_TRUE = {"1", "true", "yes", "on"}


class MailError(RuntimeError):
    """The mail could not be handed to the mail server (or the mail settings are wrong).

    ``str(error)`` is for the logs (English, no secret); ``user_message`` is the
    French sentence a page may show.
    """

    user_message = (
        "Le courriel n'a pas pu être envoyé pour le moment. Réessayez dans quelques minutes ; "
        "si cela continue, appelez le 3646."
    )
    #: ``Retry-After`` of the 503 page that says so: a mail server outage is counted in minutes.
    retry_after_seconds = 120

    @classmethod
    def headers(cls) -> dict[str, str]:
        return {"Retry-After": str(cls.retry_after_seconds)}


# --- Rendering --------------------------------------------------------------------------

def render_mail(template_name: str, **context) -> tuple[str, str, str | None]:
    """Render ``mail/<template_name>.txt`` and ``.html``: ``(subject, text, html)``.

    ``html`` is None when there is no HTML template. Needs an application context.
    """
    env = current_app.jinja_env
    context.setdefault("issuer", current_app.config["IDP_ISSUER"])

    text_template = env.get_template(f"mail/{template_name}.txt")
    block = text_template.blocks.get("subject")
    if block is None:
        raise LookupError(f"mail/{template_name}.txt has no {{% block subject %}}")
    raw_subject = "".join(block(text_template.new_context(dict(context))))
    subject = " ".join(raw_subject.split())
    if not subject:
        raise ValueError(f"mail/{template_name}.txt renders an empty subject")

    text = _tidy_text(text_template.render(context))
    try:
        html_template = env.get_template(f"mail/{template_name}.html")
    except TemplateNotFound:
        html = None
    else:
        html = html_template.render({**context, "subject": subject})
    return subject, text, html


def _tidy_text(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


# --- Building ---------------------------------------------------------------------------

def build_message(to: str, subject: str, text: str, html: str | None = None) -> EmailMessage:
    """A complete message: text, and HTML as its alternative when given."""
    if not to or any(c in to for c in "\r\n") or "@" not in to:
        raise ValueError("Invalid recipient address")
    if any(c in subject for c in "\r\n"):
        raise ValueError("A subject is one line")
    sender = current_app.config["IDP_MAIL_FROM"]
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject  # encoded as RFC 2047 UTF-8 when not ASCII
    msg["Date"] = email_utils.format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = email_utils.make_msgid(domain=_sender_domain(sender))
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies
    msg.set_content(text, subtype="plain", charset="utf-8")
    if html is not None:
        msg.add_alternative(html, subtype="html", charset="utf-8")
    return msg


def _sender_domain(sender: str) -> str:
    _, address = email_utils.parseaddr(sender)
    domain = address.rpartition("@")[2]
    return domain or "idp.invalid"


# --- Sending ----------------------------------------------------------------------------

def send_mail(to: str, subject: str, text: str, html: str | None = None) -> EmailMessage:
    """Build the message and send it through ``IDP_MAIL_URL``; returns the message sent.

    Raises :class:`MailError` when it cannot be handed over.
    """
    msg = build_message(to, subject, text, html)
    url = current_app.config["IDP_MAIL_URL"]
    scheme = urlsplit(url).scheme.lower()
    if scheme == "console":
        _send_console(msg)
    elif scheme in ("smtp", "smtps"):
        _send_smtp(url, msg)
    else:
        raise MailError(f"Unsupported IDP_MAIL_URL scheme {scheme!r} (smtp, smtps or console)")
    return msg


def check_transport() -> None:
    """Raise :class:`MailError` when a mail could not be handed over now; sends nothing.

    SMTP: connect, greet (STARTTLS and login as configured), ``NOOP``, ``QUIT``.
    Console: the outbox folder can be written. The forgotten-password form calls
    it for every request, account or not, so that a mail-server outage is told
    before anything is counted, and the same to everyone.
    """
    url = current_app.config["IDP_MAIL_URL"]
    scheme = urlsplit(url).scheme.lower()
    if scheme == "console":
        folder = outbox_dir()
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise MailError(f"Could not create {folder}: {exc}") from exc
        if not os.access(folder, os.W_OK):
            raise MailError(f"Cannot write into {folder}")
    elif scheme in ("smtp", "smtps"):
        _smtp_session(url, lambda smtp: smtp.noop())
    else:
        raise MailError(f"Unsupported IDP_MAIL_URL scheme {scheme!r} (smtp, smtps or console)")


def _option(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _send_smtp(url: str, msg: EmailMessage) -> None:
    def send(smtp: smtplib.SMTP) -> None:
        if smtp.send_message(msg):
            raise smtplib.SMTPRecipientsRefused({})

    where = _smtp_session(url, send)
    log.info("Mail sent through %s to %s: %s", where, msg["To"], msg["Subject"])


def _smtp_session(url: str, work) -> str:
    """Open an SMTP session as ``IDP_MAIL_URL`` says, run ``work(smtp)`` in it; returns ``host:port``."""
    parts = urlsplit(url)
    implicit_tls = parts.scheme.lower() == "smtps"
    query = parse_qs(parts.query)
    host = parts.hostname or "localhost"
    try:
        port = parts.port or (465 if implicit_tls else 25)
        timeout = float(_option(query, "timeout") or DEFAULT_TIMEOUT)
    except ValueError as exc:
        raise MailError("Invalid port or timeout in IDP_MAIL_URL") from exc
    starttls = (_option(query, "starttls") or "").lower() in _TRUE
    username = _option(query, "username") or (unquote(parts.username) if parts.username else None)
    password = _option(query, "password") or (unquote(parts.password) if parts.password else None)
    where = f"{host}:{port}"
    context = ssl.create_default_context() if implicit_tls or starttls else None
    try:
        if implicit_tls:
            connection = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            connection = smtplib.SMTP(host, port, timeout=timeout)
        with connection as smtp:
            if starttls:
                smtp.starttls(context=context)
            if username:
                smtp.login(username, password or "")
            work(smtp)
    except UnicodeEncodeError as exc:  # smtplib's AUTH only takes ASCII credentials
        raise MailError(f"SMTP credentials for {where} must be ASCII") from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(f"SMTP server {where} refused the credentials (code {exc.smtp_code})") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailError(f"SMTP server {where} refused the recipient") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"Could not send mail through {where}: {type(exc).__name__}: {exc}") from exc
    return where


def outbox_dir() -> Path:
    """Where the console transport keeps mails (``IDP_MAIL_OUTBOX_DIR`` or ``instance/outbox``)."""
    configured = current_app.config.get("IDP_MAIL_OUTBOX_DIR")
    return Path(configured) if configured else config.INSTANCE_DIR / "outbox"


def _send_console(msg: EmailMessage) -> Path:
    folder = outbox_dir()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Sortable: UTC time to the microsecond, then a random suffix against collisions.
        name = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}.eml"
        path = folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # mails hold secrets
        with os.fdopen(fd, "wb") as fh:
            fh.write(msg.as_bytes(policy=SMTP_POLICY))
    except OSError as exc:
        raise MailError(f"Could not write the mail into {folder}: {exc}") from exc
    # One line, recipient and subject only: the body holds secrets.
    log.info("Mail to %s: %s (console transport, kept as %s)", msg["To"], msg["Subject"], path.name)
    return path


__all__ = ["MailError", "render_mail", "send_mail", "check_transport", "build_message", "outbox_dir"]
