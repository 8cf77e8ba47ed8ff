"""``idp purge``: delete the rows that can no longer be used, so tables stay small.

Expired things are kept a while longer (``--keep``, one day by default) so that a
replay shortly after expiry is still recognised as one (a used authorization
code revokes its grant; a used refresh token too). Run it from cron; it is safe
to run on several hosts at once.
"""

from __future__ import annotations

from datetime import timedelta

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import and_, delete, exists, or_, select

from ..extensions import db
from ..models import (
    AuditEvent,
    AuthorizationCode,
    BrowserSession,
    CaptchaChallenge,
    EmailValidation,
    Grant,
    Limit,
    LoginFlow,
    PasswordReset,
    Token,
    TrustedDevice,
    UsedAssertion,
    utcnow,
)


def purge(keep_seconds: int) -> dict[str, int]:
    """Delete what expired more than ``keep_seconds`` ago; returns counts per table."""
    cfg = current_app.config
    now = utcnow()
    before = now - timedelta(seconds=keep_seconds)
    idle_before = before - timedelta(seconds=cfg["IDP_SESSION_IDLE_LIFETIME"])
    absolute_before = before - timedelta(seconds=cfg["IDP_SESSION_ABSOLUTE_LIFETIME"])
    access_before = before - timedelta(seconds=cfg["IDP_ACCESS_TOKEN_LIFETIME"])
    statements = {
        "authorization_codes": delete(AuthorizationCode).where(AuthorizationCode.expires_at < before),
        "tokens": delete(Token).where(
            Token.issued_at < access_before,
            or_(Token.refresh_expires_at.is_(None), Token.refresh_expires_at < before),
        ),
        "login_flows": delete(LoginFlow).where(LoginFlow.expires_at < before),
        "browser_sessions": delete(BrowserSession).where(
            or_(BrowserSession.ended_at < before, BrowserSession.last_seen_at < idle_before,
                BrowserSession.created_at < absolute_before)
        ),
        "trusted_devices": delete(TrustedDevice).where(
            or_(TrustedDevice.expires_at < before, TrustedDevice.revoked_at < before)
        ),
        "email_validations": delete(EmailValidation).where(EmailValidation.expires_at < before),
        "password_resets": delete(PasswordReset).where(PasswordReset.expires_at < before),
        "captcha_challenges": delete(CaptchaChallenge).where(CaptchaChallenge.expires_at < before),
        # A client assertion past its exp (and the clock skew) is refused anyway: its jti may go.
        "used_client_assertions": delete(UsedAssertion).where(UsedAssertion.expires_at < before),
        "limits": delete(Limit).where(
            or_(Limit.locked_until.is_(None), Limit.locked_until < before),
            or_(Limit.window_started_at.is_(None), Limit.window_started_at < before),
        ),
    }
    # The audit trail is kept for its own period, not until things expire (an index on ``at``).
    statements["audit_events"] = delete(AuditEvent).where(
        AuditEvent.at < now - timedelta(days=cfg["IDP_AUDIT_RETENTION"]))
    counts = {name: db.session.execute(stmt).rowcount for name, stmt in statements.items()}
    # Grants that nothing points to any more.
    orphan = and_(
        ~exists(select(Token.id).where(Token.grant_id == Grant.id)),
        ~exists(select(AuthorizationCode.id).where(AuthorizationCode.grant_id == Grant.id)),
        Grant.created_at < before,
    )
    counts["grants"] = db.session.execute(delete(Grant).where(orphan)).rowcount
    db.session.commit()
    return counts


@click.command("purge")
@click.option("--keep", default=86400, show_default=True, type=int,
              help="Seconds to keep things after they expired (replays are recognised meanwhile).")
@with_appcontext
def purge_command(keep: int) -> None:
    """Delete expired codes, tokens, flows, sessions, devices, links, CAPTCHAs, counters and used assertions,
    and the audit events older than IDP_AUDIT_RETENTION days."""
    counts = purge(keep)
    for name, count in counts.items():
        click.echo(f"{name:<20} {count}")


COMMANDS = [purge_command]
