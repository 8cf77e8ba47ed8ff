"""« Activité récente »: the person's own logins and security events, read from the audit trail.

Only rows whose ``user_id`` is the person's (never a row found by another key), of
the last ``IDP_ACCOUNT_ACTIVITY_DAYS`` days, newest first, at most
``IDP_ACCOUNT_ACTIVITY_MAX_ROWS``. Each row is handed to the page as facts (event,
instant, partner site, method, seed case); the page words them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from ..extensions import db
from ..models import AuditEvent, Client, utcnow

#: The events a person sees (the others are the operators' business: keys, clients).
SHOWN = (
    "login_succeeded", "login_failed", "lock_set", "code_sent", "password_reset_done", "password_changed",
    "password_change_refused", "trusted_device_added", "trusted_device_revoked", "email_validated",
    "email_change_requested", "email_changed", "sessions_ended", "tokens_revoked", "admin_unlocked",
    "mfa_app_enrolled", "mfa_app_removed", "recovery_codes_generated", "recovery_code_used", "mfa_reset",
)


@dataclass(frozen=True)
class Entry:
    at: datetime
    event: str
    #: The partner site's name; None for the security space's own login or no site at all.
    site: str | None
    #: mail-code, app, recovery-code, trusted-browser (``detail.method`` of a login), or None.
    method: str | None
    case: int | None
    #: The security space's own login (``detail.purpose == "account"``).
    account: bool
    reason: str | None


def recent(user_id: int) -> list[Entry]:
    cfg = current_app.config
    since = utcnow() - timedelta(days=cfg["IDP_ACCOUNT_ACTIVITY_DAYS"])
    rows = db.session.execute(
        select(AuditEvent.at, AuditEvent.event, AuditEvent.client_id, AuditEvent.case, AuditEvent.detail)
        .where(AuditEvent.user_id == user_id, AuditEvent.at >= since, AuditEvent.event.in_(SHOWN))
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(cfg["IDP_ACCOUNT_ACTIVITY_MAX_ROWS"])
    ).all()
    client_ids = {row.client_id for row in rows if row.client_id}
    names = dict(db.session.execute(select(Client.client_id, Client.name).where(Client.client_id.in_(client_ids)))
                 .all()) if client_ids else {}
    entries = []
    for row in rows:
        detail = row.detail or {}
        entries.append(Entry(
            at=row.at, event=row.event, site=names.get(row.client_id) if row.client_id else None,
            method=detail.get("method") if isinstance(detail.get("method"), str) else None,
            case=row.case, account=detail.get("purpose") == "account",
            reason=detail.get("reason") if isinstance(detail.get("reason"), str) else None,
        ))
    return entries
