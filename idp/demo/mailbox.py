"""Reading the mails the ``console://`` transport kept (see :mod:`idp.mail`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from zoneinfo import ZoneInfo

from ..mail import outbox_dir

PARIS = ZoneInfo("Europe/Paris")
#: A mail's file name: what idp.mail writes (no path separator, nothing hidden).
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.eml$")
LIST_LIMIT = 200
MAX_SIZE = 2 * 1024 * 1024


@dataclass(frozen=True)
class MailSummary:
    name: str
    date: datetime | None
    to: str
    subject: str

    @property
    def date_display(self) -> str:
        return self.date.astimezone(PARIS).strftime("%d/%m/%Y %H:%M:%S") if self.date else ""


def _parse(path: Path, headersonly: bool = False) -> EmailMessage:
    with path.open("rb") as fh:
        return BytesParser(policy=policy.default).parse(fh, headersonly=headersonly)


def _date(msg: EmailMessage) -> datetime | None:
    header = msg["Date"]
    value = getattr(header, "datetime", None)
    return value if value is not None and value.tzinfo is not None else None


def list_mails(limit: int = LIST_LIMIT) -> list[MailSummary]:
    """The newest mails first (file names sort by time)."""
    folder = outbox_dir()
    if not folder.is_dir():
        return []
    names = sorted((p.name for p in folder.iterdir() if NAME_RE.match(p.name) and p.is_file()), reverse=True)
    summaries = []
    for name in names[:limit]:
        try:
            msg = _parse(folder / name, headersonly=True)
        except OSError:
            continue
        summaries.append(MailSummary(name, _date(msg), str(msg["To"] or ""), str(msg["Subject"] or "")))
    return summaries


def load(name: str) -> EmailMessage | None:
    """One mail by file name, or None (unknown, or a name that is not a mail's)."""
    if not NAME_RE.match(name):
        return None
    folder = outbox_dir()
    path = folder / name
    try:
        if path.resolve().parent != folder.resolve() or not path.is_file() or path.stat().st_size > MAX_SIZE:
            return None
        return _parse(path)
    except OSError:
        return None


def part(msg: EmailMessage, subtype: str) -> str | None:
    """The text of the ``text/<subtype>`` body part, or None."""
    body = msg.get_body(preferencelist=(subtype,))
    if body is None or body.get_content_subtype() != subtype:
        return None
    return body.get_content()


def summary(name: str, msg: EmailMessage) -> MailSummary:
    return MailSummary(name, _date(msg), str(msg["To"] or ""), str(msg["Subject"] or ""))
