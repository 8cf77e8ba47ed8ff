"""``idp purge`` deletes what can no longer be used, and nothing that still can."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from idp.extensions import db
from idp.models import (AuthorizationCode, BrowserSession, Grant, LoginFlow, Token, TrustedDevice, utcnow)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def age_everything(days: int) -> None:
    """Move every timestamp of the login's rows back in time."""
    shift = timedelta(days=days)
    for model, columns in (
        (AuthorizationCode, ("expires_at", "used_at")),
        (Token, ("issued_at", "refresh_expires_at", "refresh_used_at")),
        (LoginFlow, ("created_at", "expires_at", "completed_at")),
        (BrowserSession, ("created_at", "last_seen_at")),
        (TrustedDevice, ("created_at", "expires_at")),
        (Grant, ("created_at",)),
    ):
        db.session.execute(update(model).values({c: getattr(model, c) - shift for c in columns}))
    db.session.commit()


def test_purge_keeps_live_rows_and_deletes_expired_ones(app, op, rp, user):
    client, secret = rp
    op.tokens(client, secret, user)
    tables = (AuthorizationCode, Token, LoginFlow, BrowserSession, Grant)
    before = {m: count(m) for m in tables}
    assert all(before.values()), before

    runner = app.test_cli_runner()
    result = runner.invoke(args=["purge"])
    assert result.exit_code == 0, result.output
    assert {m: count(m) for m in tables} == before  # all still usable or within the replay window

    age_everything(days=400)
    result = runner.invoke(args=["purge", "--keep", "0"])
    assert result.exit_code == 0, result.output
    assert {m.__tablename__: count(m) for m in tables} == {m.__tablename__: 0 for m in tables}
    assert "authorization_codes  1" in result.output


def test_a_replayed_code_is_still_recognised_within_the_keep_window(app, op, rp, user):
    """Purging does not forget a used code too early: its replay still revokes the grant."""
    client, secret = rp
    tokens, login = op.tokens(client, secret, user)
    db.session.execute(update(AuthorizationCode).values(expires_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    app.test_cli_runner().invoke(args=["purge"])  # keeps one day by default
    assert count(AuthorizationCode) == 1
    assert op.exchange(client, secret, login).json()["error"] == "invalid_grant"
    assert op.userinfo(tokens["access_token"]).status_code == 401
