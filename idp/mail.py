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

Cost: a security code is mailed during the login, so a mail must cost little
beside the one password hash. The message is written directly as bytes (headers,
``multipart/alternative``, quoted-printable UTF-8 bodies) rather than through the
``email`` package's policies, which took a millisecond per mail; and each thread
keeps its SMTP connection open for the next mail (``IDP_MAIL_KEEP_ALIVE`` seconds,
greeting, STARTTLS and login done once). A kept connection is asked ``NOOP``
first, with :data:`PROBE_TIMEOUT`: one the server closed meanwhile (a restart, its
idle timeout: ``421``, a reset, end of file) or that a network device dropped
silently (no answer) is replaced by a new one before the mail is sent, so a mail
is never sent again after a failure that may have come once the server had it;
any failure while sending (a refusal, a timeout, no server) is a
:class:`MailError` at once, as without keep-alive.

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

import binascii
import functools
import logging
import os
import re
import secrets
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.header import Header
from email import utils as email_utils
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app
from jinja2 import TemplateNotFound

from . import config
from .ops import metrics

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
    """A complete message through the ``email`` package: text, and HTML as its alternative.

    :func:`compose` writes the same message faster; this one serves addresses that are
    not ASCII (SMTPUTF8).
    """
    _check_addressing(to, subject)
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

@dataclass(frozen=True)
class OutgoingMail:
    """A message ready for the wire: its envelope, a few headers, and its bytes (CRLF line ends)."""

    sender: str  # envelope sender (the address of IDP_MAIL_FROM)
    to: str
    headers: dict[str, str]
    raw: bytes

    def __getitem__(self, name: str) -> str | None:
        return self.headers.get(name)


def _check_addressing(to: str, subject: str) -> None:
    if not to or any(c in to for c in "\r\n") or "@" not in to:
        raise ValueError("Invalid recipient address")
    if any(c in subject for c in "\r\n"):
        raise ValueError("A subject is one line")


@functools.lru_cache(maxsize=64)
def _encoded_header(name: str, value: str) -> str:
    """``Name: value`` as it goes on the wire: RFC 2047 UTF-8 words when not ASCII, folded.

    Kept per value: subjects come from the templates and never hold a secret or a name.
    """
    if value.isascii() and len(name) + len(value) < 76:
        return f"{name}: {value}"
    return f"{name}: " + Header(value, "utf-8", header_name=name).encode(linesep="\r\n")


@functools.lru_cache(maxsize=8)
def _sender(from_header: str) -> tuple[str, str]:
    """(the From header as written, the envelope sender) for ``IDP_MAIL_FROM``."""
    name, address = email_utils.parseaddr(from_header)
    return email_utils.formataddr((name, address), charset="utf-8"), address


def _qp_part(content_type: str, body: str) -> bytes:
    # Lines end in CRLF on the wire and nowhere else a CR: a bare CR or LF is refused by
    # servers that guard against SMTP smuggling (a value from the database may hold one).
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    encoded = binascii.b2a_qp(body.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
    return (f"Content-Type: {content_type}; charset=\"utf-8\"\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + encoded


def compose(to: str, subject: str, text: str, html: str | None = None) -> OutgoingMail:
    """The message as bytes: text, and HTML as its alternative when given (7-bit clean).

    Addresses that are not ASCII (which need SMTPUTF8) go through :func:`build_message`.
    """
    _check_addressing(to, subject)
    from_header, sender = _sender(current_app.config["IDP_MAIL_FROM"])
    if not (to.isascii() and sender.isascii()):
        msg = build_message(to, subject, text, html)
        return OutgoingMail(sender, to, {k: str(v) for k, v in msg.items()}, msg.as_bytes(policy=SMTP_POLICY))
    headers = {
        "From": from_header,
        "To": to,
        "Subject": subject,
        "Date": email_utils.format_datetime(datetime.now(timezone.utc)),
        "Message-ID": email_utils.make_msgid(domain=_sender_domain(sender)),
        "Auto-Submitted": "auto-generated",  # RFC 3834: no auto-replies
    }
    head = "\r\n".join([
        f"From: {from_header}", f"To: {to}", _encoded_header("Subject", subject), f"Date: {headers['Date']}",
        f"Message-ID: {headers['Message-ID']}", "Auto-Submitted: auto-generated", "MIME-Version: 1.0", "",
    ]).encode()
    if html is None:
        raw = head + _qp_part("text/plain", text)
    else:
        # "=_" never occurs in quoted-printable text (RFC 2045 §6.7): a safe boundary.
        boundary = "=_" + secrets.token_hex(16)
        separator = f"\r\n--{boundary}\r\n".encode()
        raw = (head + f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n'.encode()
               + separator[2:] + _qp_part("text/plain", text)
               + separator + _qp_part("text/html", html)
               + f"\r\n--{boundary}--\r\n".encode())
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    return OutgoingMail(sender, to, headers, raw)


def send_mail(to: str, subject: str, text: str, html: str | None = None) -> OutgoingMail:
    """Compose the message and send it through ``IDP_MAIL_URL``; returns the message sent.

    Raises :class:`MailError` when it cannot be handed over.
    """
    mail = compose(to, subject, text, html)
    url = current_app.config["IDP_MAIL_URL"]
    scheme = urlsplit(url).scheme.lower()
    try:
        if scheme == "console":
            _send_console(mail)
        elif scheme in ("smtp", "smtps"):
            _send_smtp(url, mail)
        else:
            raise MailError(f"Unsupported IDP_MAIL_URL scheme {scheme!r} (smtp, smtps or console)")
    except MailError:
        metrics.mail_failed(scheme)  # idp_mail_send_failures_total
        raise
    return mail


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


def transport_configured() -> bool:
    """Whether ``IDP_MAIL_URL`` names a transport the mailer can use (nothing is contacted)."""
    url = current_app.config["IDP_MAIL_URL"] or ""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "console":
        return True
    if scheme not in ("smtp", "smtps"):
        return False
    try:
        return bool(_smtp_config(url).host)
    except MailError:
        return False


def _option(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


@dataclass(frozen=True)
class _SMTPConfig:
    url: str
    host: str
    port: int
    timeout: float
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: str | None = field(repr=False)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


@functools.lru_cache(maxsize=8)
def _smtp_config(url: str) -> _SMTPConfig:
    parts = urlsplit(url)
    implicit_tls = parts.scheme.lower() == "smtps"
    query = parse_qs(parts.query)
    host = parts.hostname or "localhost"
    try:
        port = parts.port or (465 if implicit_tls else 25)
        timeout = float(_option(query, "timeout") or DEFAULT_TIMEOUT)
    except ValueError as exc:
        raise MailError("Invalid port or timeout in IDP_MAIL_URL") from exc
    return _SMTPConfig(
        url=url, host=host, port=port, timeout=timeout, implicit_tls=implicit_tls,
        starttls=(_option(query, "starttls") or "").lower() in _TRUE,
        username=_option(query, "username") or (unquote(parts.username) if parts.username else None),
        password=_option(query, "password") or (unquote(parts.password) if parts.password else None),
    )


def _connect(cfg: _SMTPConfig) -> smtplib.SMTP:
    """A greeted connection: TLS and login done as ``IDP_MAIL_URL`` says (no TLS context without TLS)."""
    context = ssl.create_default_context() if cfg.implicit_tls or cfg.starttls else None
    if cfg.implicit_tls:
        smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=context)
    else:
        smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
    try:
        if cfg.starttls:
            smtp.starttls(context=context)
        if cfg.username:
            smtp.login(cfg.username, cfg.password or "")
    except BaseException:
        _close(smtp)
        raise
    return smtp


def _close(smtp: smtplib.SMTP, polite: bool = False) -> None:
    try:
        if polite:
            smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        smtp.close()


class _mail_errors:
    """Turns what smtplib raises into :class:`MailError` (a log line in English, no secret)."""

    def __init__(self, where: str):
        self.where = where

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        where = self.where
        if exc is None or isinstance(exc, MailError):
            return False
        if isinstance(exc, UnicodeEncodeError):  # smtplib's AUTH only takes ASCII credentials
            raise MailError(f"SMTP credentials for {where} must be ASCII") from exc
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            raise MailError(f"SMTP server {where} refused the credentials (code {exc.smtp_code})") from exc
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            raise MailError(f"SMTP server {where} refused the recipient") from exc
        if isinstance(exc, (smtplib.SMTPException, OSError)):
            raise MailError(f"Could not send mail through {where}: {type(exc).__name__}: {exc}") from exc
        return False


def _smtp_session(url: str, work) -> str:
    """Open an SMTP session as ``IDP_MAIL_URL`` says, run ``work(smtp)`` in it, close it; returns ``host:port``."""
    cfg = _smtp_config(url)
    with _mail_errors(cfg.where):
        smtp = _connect(cfg)
        try:
            work(smtp)
        except BaseException:
            _close(smtp)
            raise
        _close(smtp, polite=True)
    return cfg.where


#: Each thread's kept SMTP connection: (url, connection, when last used, monotonic seconds).
_kept = threading.local()


#: Seconds a kept connection has to answer ``NOOP`` before it is replaced by a new one.
PROBE_TIMEOUT = 1.0


def _answers(smtp: smtplib.SMTP, timeout: float) -> bool:
    """Whether a kept connection still answers ``NOOP`` within :data:`PROBE_TIMEOUT`.

    Asked before a mail rather than retrying the mail after a failure: a failure
    after ``DATA`` may come once the server has queued the mail, and a retry would
    send it twice; and a connection a firewall dropped without a word would make
    the mail wait the whole SMTP timeout.
    """
    try:
        smtp.sock.settimeout(PROBE_TIMEOUT)
        code, _ = smtp.noop()
        smtp.sock.settimeout(timeout)
    except (smtplib.SMTPException, OSError, AttributeError):
        return False
    return code == 250


def _deliver(smtp: smtplib.SMTP, mail: OutgoingMail) -> None:
    if smtp.sendmail(mail.sender, [mail.to], mail.raw):
        raise smtplib.SMTPRecipientsRefused({})


def _send_smtp(url: str, mail: OutgoingMail) -> None:
    """Send on this thread's kept connection, or a new one; keep it for ``IDP_MAIL_KEEP_ALIVE`` seconds."""
    cfg = _smtp_config(url)
    keep_alive = current_app.config["IDP_MAIL_KEEP_ALIVE"]
    kept, _kept.connection = getattr(_kept, "connection", None), None
    with _mail_errors(cfg.where):
        smtp = None
        if kept is not None:
            kept_url, smtp, last_used = kept
            if kept_url != url or time.monotonic() - last_used > keep_alive:
                _close(smtp)  # no QUIT: a server that stopped answering would make it wait
                smtp = None
        if smtp is not None and not _answers(smtp, cfg.timeout):
            _close(smtp)  # closed by the server, or dropped on the way: a new one
            smtp = None
        if smtp is None:
            smtp = _connect(cfg)
        try:
            _deliver(smtp, mail)
        except BaseException:
            _close(smtp)
            raise
        if keep_alive > 0:
            _kept.connection = (url, smtp, time.monotonic())
        else:
            _close(smtp, polite=True)
    log.info("Mail sent through %s to %s: %s", cfg.where, mail.to, mail["Subject"])


def outbox_dir() -> Path:
    """Where the console transport keeps mails (``IDP_MAIL_OUTBOX_DIR`` or ``instance/outbox``)."""
    configured = current_app.config.get("IDP_MAIL_OUTBOX_DIR")
    return Path(configured) if configured else config.INSTANCE_DIR / "outbox"


def _send_console(mail: OutgoingMail) -> Path:
    folder = outbox_dir()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Sortable: UTC time to the microsecond, then a random suffix against collisions.
        name = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}.eml"
        path = folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # mails hold secrets
        with os.fdopen(fd, "wb") as fh:
            fh.write(mail.raw)
    except OSError as exc:
        raise MailError(f"Could not write the mail into {folder}: {exc}") from exc
    # One line, recipient and subject only: the body holds secrets.
    log.info("Mail to %s: %s (console transport, kept as %s)", mail.to, mail["Subject"], path.name)
    return path


__all__ = ["MailError", "OutgoingMail", "render_mail", "send_mail", "compose", "check_transport", "build_message",
           "outbox_dir"]
