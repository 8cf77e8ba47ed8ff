"""The per-account quota of reset mails (case 2), read from the settings."""

from __future__ import annotations

from flask import current_app

from ..limits import Policy


def reset_mail_quota() -> Policy:
    """Case 2: one request more than the quota within the window blocks the service for that NIR."""
    cfg = current_app.config
    return Policy("reset-mail", cfg["IDP_RESET_MAIL_QUOTA"] + 1, cfg["IDP_RESET_MAIL_QUOTA_BLOCK"],
                  cfg["IDP_RESET_MAIL_QUOTA_WINDOW"], locking_event_allowed=False)
