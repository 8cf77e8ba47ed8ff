"""The audit trail and the domain counters: what happened to an account, a client, a key.

One call, :func:`record`, writes one row of ``audit_events`` **in the transaction
of the change it records**: kept by the ORM session and inserted just before its
next COMMIT (all the rows of a transaction in one INSERT), or run on the protocol
request's connection (``connection=``) before :func:`idp.oidc.store.commit`.
So a request that is rolled back (a double submit, a database outage) leaves no
row, and a change that is committed always has its row. A failure that changes
nothing but a limits counter is recorded in the transaction of that counter's
statement, or, when the counter had to be committed before the secret was checked
(:func:`idp.limits.reserve`), in the request's own commit right after.

A row never holds a secret: no password, code, token, link or client secret, and
no NIR in clear — a keyed hash of it (purpose ``audit-nir``) identifies the person
typed, account or not, and lets ``idp audit --nir`` find the rows of attempts on a
NIR that has no account.

The same events feed the Prometheus counters below (default registry; the
``/metrics`` endpoint exposes it). A counter moves when the transaction that
holds its row is committed, never for a rolled-back one: the increments wait in
``g`` until the engine's ``commit`` event (a COMMIT that itself fails at that very
instant may over-count by one; a rollback never counts). No label carries a NIR,
an e-mail, a client secret or any other value a person typed: only the event's
outcome, the seed's case number and fixed kinds.
"""

from __future__ import annotations

from typing import Any, Callable

from flask import g, has_app_context, has_request_context, request
from prometheus_client import Counter
from sqlalchemy import event as sa_event
from sqlalchemy import insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from . import crypto, nir as nirs
from .extensions import db
from .models import utcnow
from .models.audit import AuditEvent

#: Purpose of the keyed hash of a NIR in the trail (not the counters' one: the two never meet).
NIR_PURPOSE = "audit-nir"

# --- The vocabulary ------------------------------------------------------------------------------
#: Every event the trail knows, with what it means (the README's table is this one).
EVENTS: dict[str, str] = {
    "login_succeeded": "A login ended: the relying party gets its code (or, client_id empty, the security "
                       "space opens). detail: acr, amr, method (mail-code, app-code, recovery-code or "
                       "trusted-browser), purpose (account: the security space's own login).",
    "login_failed": "A login step refused: case = the seed's case (1 no validated e-mail, 2 code expired, "
                    "3 code quota, 4 wrong password or code, 5 code lock, 6 password lock, 7 not affiliated, "
                    "8 affiliation pending). detail: step, refused (not verified because locked).",
    "code_sent": "A security code was mailed (login step 1, or « Recevoir un nouveau code »).",
    "lock_set": "Wrong passwords (case 6) or wrong codes (case 5) locked the NIR or the account; or wrong first "
                "codes of a new authenticator app locked its confirmation (security space, kind app-enrol). "
                "detail: kind, until.",
    "lock_lifted": "A lock in force was lifted (administrator). detail: kind.",
    "quota_blocked": "A quota was passed and blocks for a while: codes (login case 3) or reset mails "
                     "(forgotten password case 2), e-mail change links (security space, kind email_change). "
                     "detail: kind, until.",
    "password_reset_requested": "Forgotten password step 2 accepted (user set when the NIR and birth date "
                                "match an account; the link is mailed then).",
    "password_reset_refused": "Forgotten password refused: case 1 (no validated e-mail), case 2 (quota).",
    "password_reset_done": "A reset link changed the password (devices, sessions and grants revoked with it).",
    "trusted_device_added": "« J'utilise mon ordinateur personnel »: this browser skips the code.",
    "trusted_device_revoked": "Trusted browsers forgotten. detail: count, reason (password-reset, password-change, "
                              "account: the person in the security space, cli: idp users sessions --end), "
                              "device (the one revoked, when only one).",
    "password_changed": "The person changed the password in the security space (other sessions, trusted browsers "
                        "and grants ended with it).",
    "password_change_refused": "Security space: a wrong current password (case 4), or refused because the NIR is "
                               "locked by wrong passwords (case 6; detail: refused).",
    "email_change_requested": "Security space: a validation link was sent to a new e-mail address (the old one is "
                              "told); nothing changes until it is used.",
    "email_changed": "The validation link of a new e-mail address was used: the address changed.",
    "sessions_ended": "Every login session of the person ended, with their grants: « Se déconnecter de tous les "
                      "appareils » (by: person) or idp users sessions --end (by: cli). detail: sessions, grants.",
    "sessions_viewed": "idp users sessions: an agent listed the person's sessions and trusted browsers (by: cli).",
    "email_validated": "The e-mail validation link was used (login case 1).",
    "tokens_revoked": "Tokens revoked. detail: reason = refresh-reuse (a used refresh token came back: "
                      "the grant is revoked), revocation-endpoint (RFC 7009), admin-logout (idp users logout), "
                      "password-reset, password-change (security space: the other sessions).",
    "key_rotated": "idp keys rotate: a new active signing key. detail: kid, alg.",
    "client_added": "idp clients add. detail: name.",
    "client_changed": "idp clients update. detail: the options changed (never a secret; rotate-secret: true).",
    "client_removed": "idp clients remove.",
    "admin_unlocked": "idp users unlock. detail: lifted (the locks that were in force).",
    "mfa_app_enrolled": "An authenticator app was confirmed by its first code (issue 12).",
    "mfa_app_removed": "The authenticator app was removed. detail: by (person, or cli: idp users mfa reset).",
    "recovery_codes_generated": "New recovery codes replaced the earlier ones. detail: count.",
    "recovery_code_used": "A recovery code stood in for the second factor at login. detail: remaining.",
    "mfa_reset": "idp users mfa reset (3646 agent, after the phone identity check): app and recovery codes "
                 "removed. detail: by, app, recovery_codes.",
    "notification_failed": "A notification mail could not be sent; what it notified went on. "
                           "detail: kind (new-login, recovery-code-used).",
}

# --- The counters ------------------------------------------------------------------------------
LOGINS = Counter("idp_logins", "Logins by outcome; failures carry the seed's case number.", ["outcome", "case"])
CODES_SENT = Counter("idp_codes_sent", "Security codes mailed (login steps 1 and 3).")
LOCKS = Counter("idp_locks", "Locks set by wrong secrets: kind=password (case 6) or code (case 5).", ["kind"])
QUOTA_BLOCKS = Counter("idp_quota_blocks", "Quota blocks started: kind=code (login case 3) or reset_mail "
                                           "(forgotten password case 2).", ["kind"])
REFRESH_REUSE = Counter("idp_refresh_reuse_detected", "Used refresh tokens presented again (the grant is revoked).")
PASSWORD_RESETS = Counter("idp_password_resets", "Forgotten-password outcomes: requested, refused, done.",
                          ["outcome"])


def _increments(event: str, case: int | None, detail: dict | None) -> Callable[[], None] | None:
    """The counter move that goes with an event, run once its transaction commits."""
    detail = detail or {}
    if event == "login_succeeded":
        return LOGINS.labels(outcome="success", case="").inc
    if event == "login_failed":
        return LOGINS.labels(outcome="failure", case=str(case or "")).inc
    if event == "code_sent":
        return CODES_SENT.inc
    if event == "lock_set":
        return LOCKS.labels(kind=detail.get("kind", "")).inc
    if event == "quota_blocked":
        return QUOTA_BLOCKS.labels(kind=detail.get("kind", "")).inc
    if event == "tokens_revoked" and detail.get("reason") == "refresh-reuse":
        return REFRESH_REUSE.inc
    if event.startswith("password_reset_"):
        return PASSWORD_RESETS.labels(outcome=event.removeprefix("password_reset_")).inc
    return None


def nir_hash(value: str) -> str:
    """The trail's keyed hash of a NIR (normalised first: spaces and case do not matter)."""
    return crypto.keyed_hash(NIR_PURPOSE, nirs.normalize(value))


def record(event: str, *, user_id: int | None = None, nir: str | None = None, client_id: str | None = None,
           case: int | None = None, detail: dict[str, Any] | None = None,
           connection: Connection | None = None) -> None:
    """Add one audit row to the current transaction; the caller's commit writes it.

    ``nir`` is the NIR in clear (as typed or as stored): only its keyed hash is
    kept. ``client_id`` is the public client identifier. ``detail`` is a small
    JSON object of non-secret facts. With ``connection``, the row is inserted on
    that connection (the protocol endpoints' one) instead of the ORM session.
    """
    if event not in EVENTS:
        raise ValueError(f"Unknown audit event {event!r}")
    row = {
        "at": utcnow(),
        "event": event,
        "user_id": user_id,
        "nir_hash": nir_hash(nir) if nir else None,
        "client_id": client_id,
        "case": case,
        "request_id": (g.get("request_id") if has_app_context() else None),
        "ip": (request.remote_addr if has_request_context() else None),
        "detail": detail or None,
    }
    if connection is not None:
        connection.execute(_INSERT, row)
    else:
        db.session().info.setdefault(_PENDING, []).append(row)
    increment = _increments(event, case, detail)
    if increment is not None and has_app_context():
        g.setdefault("idp_audit_increments", []).append(increment)


def pending() -> bool:
    """Whether rows wait for the session's next commit (a request that wrote nothing else commits them)."""
    return bool(db.session().info.get(_PENDING))


#: The rows recorded on the ORM session, written by its next commit (:func:`_write_pending`).
_PENDING = "idp_audit_rows"
_INSERT = insert(AuditEvent.__table__)


@sa_event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    """The session's audit rows, all in one INSERT, just before the COMMIT of the change they record.

    One statement however many rows the transaction holds (a login with its trusted
    browser: two), with no RETURNING: the rows are never read back by the request.
    """
    rows = session.info.pop(_PENDING, None)
    if rows:
        session.connection().execute(_INSERT, rows)


@sa_event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction) -> None:
    """A rolled-back transaction records nothing, and counts nothing (a double submit, a database outage).

    ``after_soft_rollback``: also when no statement had begun a transaction yet.
    """
    session.info.pop(_PENDING, None)
    rolled_back()


def committed() -> None:
    """Count the rows the request's transaction just committed (:func:`record` keeps their counters until then).

    Called after each commit: the ORM session's (below) and the protocol endpoints'
    connection's (:func:`idp.oidc.store.commit`). Not an ``Engine`` "commit" listener:
    any ``Engine`` listener turns on SQLAlchemy's per-statement event dispatch for every
    statement of every request (measured: 2.5 % of a served UserInfo request).
    """
    if has_app_context():
        for increment in g.pop("idp_audit_increments", ()):
            increment()


def rolled_back() -> None:
    """Nothing of a rolled-back transaction is counted."""
    if has_app_context():
        g.pop("idp_audit_increments", None)


@sa_event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    committed()
