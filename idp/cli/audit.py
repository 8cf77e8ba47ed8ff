"""``idp audit``: what happened to this person's account at 10:42?

Reads the audit trail (:mod:`idp.audit`). ``--nir`` finds the rows of the account
with that NIR (by ``user_id``) and the rows of attempts on the NIR typed without
an account, or before the account was known (by the keyed hash of the NIR): two
index range scans, ``(user_id, at)`` and ``(nir_hash, at)``, so the answer stays
instant on a table of a hundred million rows. Times given without an offset are
Paris time, as the person on the phone says them; each row shows both.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import click
from flask.cli import with_appcontext
from sqlalchemy import and_, or_, select, union_all

from .. import audit, nir
from ..extensions import db
from ..models import AuditEvent, User
from ..timefmt import PARIS, to_paris
from .users import nir_problem


def parse_instant(value: str, option: str) -> datetime:
    """``2026-12-01T10:00`` (Paris time) or with an offset (``…Z``, ``…+01:00``): naive UTC, as stored."""
    text = value.strip().replace(" ", "T")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected a date and time such as 2026-12-01T10:00 "
                                 "(Paris time) or 2026-12-01T09:00Z.", param_hint=option)
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=PARIS)
    return instant.astimezone(timezone.utc).replace(tzinfo=None)


def person_query(user_id: int | None, nir_hash: str | None, *, event: str | None = None,
                 since: datetime | None = None, until: datetime | None = None, limit: int = 100):
    """The newest ``limit`` rows of one person: their account's, and those of attempts on their NIR.

    A UNION ALL of one backward range scan per index (the second leaves out the
    account's own rows, already in the first), each limited, then merged.
    """
    table = AuditEvent.__table__
    c = table.c

    def filters():
        conditions = []
        if event:
            conditions.append(c.event == event)
        if since is not None:
            conditions.append(c.at >= since)
        if until is not None:
            conditions.append(c.at <= until)
        return conditions

    branches = []
    if user_id is not None:
        branches.append(select(table).where(c.user_id == user_id, *filters())
                        .order_by(c.at.desc()).limit(limit))
    if nir_hash is not None:
        other = or_(c.user_id.is_(None), c.user_id != user_id) if user_id is not None else and_(True)
        branches.append(select(table).where(c.nir_hash == nir_hash, other, *filters())
                        .order_by(c.at.desc()).limit(limit))
    if not branches:
        return all_query(event=event, since=since, until=until, limit=limit)
    if len(branches) == 1:
        return branches[0]
    merged = union_all(*(b.subquery().select() for b in branches)).subquery()
    return select(merged).order_by(merged.c.at.desc()).limit(limit)


def all_query(*, event: str | None = None, since: datetime | None = None, until: datetime | None = None,
              limit: int = 100):
    c = AuditEvent.__table__.c
    conditions = [c.event == event] if event else []
    if since is not None:
        conditions.append(c.at >= since)
    if until is not None:
        conditions.append(c.at <= until)
    return select(AuditEvent.__table__).where(*conditions).order_by(c.at.desc()).limit(limit)


def _as_dict(row) -> dict:
    at = row.at
    return {
        "at": at.replace(tzinfo=timezone.utc).isoformat().replace("+00:00", "Z"),
        "at_paris": to_paris(at).isoformat(),
        "event": row.event,
        "case": row.case,
        "user_id": row.user_id,
        "nir_hash": row.nir_hash,
        "client_id": row.client_id,
        "request_id": row.request_id,
        "ip": row.ip,
        "detail": row.detail,
    }


def _line(row: dict) -> str:
    paris = datetime.fromisoformat(row["at_paris"])
    utc = row["at"][11:19]
    parts = [f"{paris:%Y-%m-%d %H:%M:%S} Paris ({utc} UTC)", f"{row['event']:<24}"]
    if row["case"] is not None:
        parts.append(f"case {row['case']}")
    if row["user_id"] is not None:
        parts.append(f"user {row['user_id']}")
    elif row["nir_hash"]:
        parts.append(f"nir#{row['nir_hash'][:12]}")
    for key in ("client_id", "ip", "request_id"):
        if row[key]:
            parts.append(f"{key.split('_')[0]} {row[key]}")
    if row["detail"]:
        parts.append(json.dumps(row["detail"], ensure_ascii=False, sort_keys=True))
    return "  ".join(parts)


@click.command("audit")
@click.option("--nir", "nir_value", metavar="NIR", help="One person: their account's events and the attempts "
              "on this NIR (also when no account has it).")
@click.option("--event", type=click.Choice(sorted(audit.EVENTS)), help="Only this event.")
@click.option("--since", help="From this instant: 2026-12-01T10:00 (Paris time), or with Z / an offset.")
@click.option("--until", help="Up to this instant (same format).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100000),
              help="The newest rows to show (oldest first).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@with_appcontext
def audit_command(nir_value, event, since, until, limit, as_json) -> None:
    """The audit trail: what happened to an account, a client or a key, and when (Paris and UTC times)."""
    since_at = parse_instant(since, "--since") if since else None
    until_at = parse_instant(until, "--until") if until else None
    if nir_value is not None:
        problem = nir_problem(nir_value)
        if problem:
            raise click.ClickException(problem + ".")
        normalized = nir.normalize(nir_value)
        user_id = db.session.scalar(select(User.id).where(User.nir == normalized))
        statement = person_query(user_id, audit.nir_hash(normalized), event=event, since=since_at,
                                 until=until_at, limit=limit)
        if not as_json:
            click.echo(f"Account: user {user_id}." if user_id is not None else "No account has this NIR: "
                       "the attempts on it only.", err=True)
    else:
        statement = all_query(event=event, since=since_at, until=until_at, limit=limit)
    # Ordered by time alone in SQL, so that each index gives its rows in order (no sort of a
    # person's whole history, nor of the table); the events of one second in the order written.
    rows = [_as_dict(row) for row in sorted(db.session.execute(statement).all(), key=lambda r: (r.at, r.id))]
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False, sort_keys=True) if as_json else _line(row))
    if not rows and not as_json:
        click.echo("No event.", err=True)


COMMANDS = [audit_command]
