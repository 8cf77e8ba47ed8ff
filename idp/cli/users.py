"""``idp users``: create accounts one by one or from a CSV file, and look one up.

Every value goes through :func:`check_user`, the same checks for ``add`` and
``import``: a CSV import is all or nothing, and reports every bad line at once.
Passwords are hashed with Argon2id before they reach the database and are never
printed back.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import date

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .. import audit, crypto, nir
from ..extensions import db
from ..models import User, utcnow
from ..models.users import AFFILIATIONS
from ..regimes import DEFAULT_REGIME, REGIMES

GENDERS = ("female", "male")
#: The login form refuses longer passwords (idp/login/forms.py), so such an account could never log in.
PASSWORD_MAX_LENGTH = 128
EMAIL_MAX_LENGTH = 254
NAME_MAX_LENGTH = 100
CAISSE_MAX_LENGTH = 120

CSV_REQUIRED = ("nir", "password", "email", "birth_date", "given_name", "family_name")
CSV_OPTIONAL = ("gender", "regime", "caisse", "affiliation", "email_verified")
CSV_COLUMNS = CSV_REQUIRED + CSV_OPTIONAL
_TRUE = {"1", "true", "yes", "y", "oui", "o"}
_FALSE = {"0", "false", "no", "n", "non"}

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SPACE_RE = re.compile(r"\s")


# --- checks ---------------------------------------------------------------------------

def nir_problem(raw: str) -> str | None:
    """Why ``raw`` is not a valid NIR, in words an administrator can act on; None when valid."""
    value = nir.normalize(raw)
    if nir.is_valid(value):
        return None
    if not value:
        return "NIR is missing"
    if len(value) != 15:
        return f"NIR must have 15 characters (13 for the person, 2 for the key), not {len(value)}"
    body, key = value[:13], value[13:]
    if key.isdigit():
        try:
            expected = nir.control_key(body)
        except ValueError:  # letters other than 2A/2B
            expected = None
        if expected is not None and nir.is_valid(f"{body}{expected:02d}"):
            return f"NIR control key is wrong (expected {expected:02d})"
    return "NIR has an invalid format (sex, birth month or department)"


def password_problem(password: str) -> str | None:
    if not password:
        return "password is empty"
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"password is longer than {PASSWORD_MAX_LENGTH} characters"
    return None


def email_problem(value: str) -> str | None:
    """A deliberately rough check: one @, something before, a dotted domain after."""
    if not value:
        return "email is missing"
    if len(value) > EMAIL_MAX_LENGTH:
        return f"email is longer than {EMAIL_MAX_LENGTH} characters"
    if _SPACE_RE.search(value) or value.count("@") != 1:
        return "email must contain exactly one @ and no spaces"
    local, domain = value.split("@")
    if not local or "." not in domain or domain.startswith(".") or domain.endswith(".") or ".." in domain:
        return "email domain must look like example.fr"
    return None


def parse_birth_date(value: str) -> date:
    """A real calendar date written YYYY-MM-DD, not in the future."""
    if not _DATE_RE.match(value or ""):
        raise ValueError("birth date must be written YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"birth date {value} does not exist") from None
    if day > utcnow().date():
        raise ValueError("birth date is in the future")
    if day.year < 1900:
        raise ValueError("birth date is before 1900")
    return day


def parse_bool(value: str, default: bool) -> bool:
    text = (value or "").strip().lower()
    if not text:
        return default
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"email_verified must be true or false, not {value!r}")


@dataclass
class CheckedUser:
    """Values ready for a :class:`User` row, or the reasons they are not."""

    values: dict = field(default_factory=dict)
    password: str | None = None
    errors: list[str] = field(default_factory=list)


def check_user(
    *,
    nir_value: str,
    password: str | None,
    email: str,
    birth_date: str,
    given_name: str,
    family_name: str,
    gender: str | None = None,
    regime: str | None = None,
    caisse: str | None = None,
    affiliation: str | None = None,
    email_verified: bool = True,
) -> CheckedUser:
    """Check and normalise one account; collects every problem rather than stopping at the first."""
    out = CheckedUser()
    errors = out.errors

    problem = nir_problem(nir_value or "")
    if problem:
        errors.append(problem)
    else:
        out.values["nir"] = nir.normalize(nir_value)

    if password is not None:
        problem = password_problem(password)
        if problem:
            errors.append(problem)
        else:
            out.password = password

    email = (email or "").strip()
    problem = email_problem(email)
    if problem:
        errors.append(problem)
    else:
        out.values["email"] = email
        out.values["email_verified"] = bool(email_verified)

    try:
        out.values["birth_date"] = parse_birth_date((birth_date or "").strip())
    except ValueError as exc:
        errors.append(str(exc))

    for key, label, value in (("given_name", "given name", given_name), ("family_name", "family name", family_name)):
        value = (value or "").strip()
        if not value:
            errors.append(f"{label} is missing")
        elif len(value) > NAME_MAX_LENGTH:
            errors.append(f"{label} is longer than {NAME_MAX_LENGTH} characters")
        else:
            out.values[key] = value

    gender = (gender or "").strip().lower() or None
    if gender is not None and gender not in GENDERS:
        errors.append(f"gender must be one of {', '.join(GENDERS)} (or empty)")
    else:
        out.values["gender"] = gender

    regime = (regime or "").strip() or DEFAULT_REGIME
    if regime not in REGIMES:
        errors.append(f"unknown regime {regime!r} (known: {', '.join(REGIMES)})")
    else:
        out.values["regime_code"] = regime

    caisse = (caisse or "").strip() or None
    if caisse is not None and len(caisse) > CAISSE_MAX_LENGTH:
        errors.append(f"caisse is longer than {CAISSE_MAX_LENGTH} characters")
    else:
        out.values["caisse"] = caisse

    affiliation = (affiliation or "").strip().lower() or "affiliated"
    if affiliation not in AFFILIATIONS:
        errors.append(f"affiliation must be one of {', '.join(AFFILIATIONS)}")
    else:
        out.values["affiliation"] = affiliation

    return out


def _existing_nirs(nirs: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(nirs), 500):
        chunk = nirs[start : start + 500]
        found.update(db.session.scalars(select(User.nir).where(User.nir.in_(chunk))))
    return found


def _new_user(checked: CheckedUser) -> User:
    now = utcnow()
    return User(
        password_hash=crypto.hash_password(checked.password) if checked.password else None,
        password_changed_at=now if checked.password else None,
        created_at=now,
        **checked.values,
    )


# --- commands -------------------------------------------------------------------------

@click.group("users")
def users_group() -> None:
    """Insured people's accounts."""


@users_group.command("add")
@click.option("--nir", "nir_value", required=True, help="Social-security number, 15 characters with its key.")
@click.option("--password", help="Initial password. Prompted for (hidden, twice) when omitted, which keeps "
              "it out of the shell history.")
@click.option("--email", required=True)
@click.option("--birth-date", required=True, metavar="YYYY-MM-DD")
@click.option("--given-name", required=True)
@click.option("--family-name", required=True)
@click.option("--gender", type=click.Choice(GENDERS))
@click.option("--regime", default=DEFAULT_REGIME, show_default=True, metavar="CODE",
              help=f"Regime code: {', '.join(REGIMES)}.")
@click.option("--caisse", help="Name of the member's fund, e.g. 'CPAM des Yvelines'.")
@click.option("--affiliation", type=click.Choice(AFFILIATIONS), default="affiliated", show_default=True)
@click.option("--email-unverified", is_flag=True, help="The email address has not been verified.")
@with_appcontext
def add_command(nir_value, password, email, birth_date, given_name, family_name, gender, regime, caisse,
                affiliation, email_unverified) -> None:
    """Create one account and print its internal id."""
    checked = check_user(
        nir_value=nir_value,
        password=None,  # checked below, after the other fields, so nobody types it for nothing
        email=email,
        birth_date=birth_date,
        given_name=given_name,
        family_name=family_name,
        gender=gender,
        regime=regime,
        caisse=caisse,
        affiliation=affiliation,
        email_verified=not email_unverified,
    )
    if checked.errors:
        raise click.ClickException("; ".join(checked.errors) + ".")
    if _existing_nirs([checked.values["nir"]]):
        raise click.ClickException("An account with this NIR already exists.")

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    problem = password_problem(password)
    if problem:
        raise click.ClickException(problem + ".")
    checked.password = password

    user = _new_user(checked)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise click.ClickException("An account with this NIR already exists.") from None
    click.echo(f"User created with id {user.id}.")


@users_group.command("import")
@click.argument("csv_file", metavar="FILE.csv", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def import_command(csv_file: str) -> None:
    """Create accounts from a CSV file, all or none.

    Header: nir,password,email,birth_date,given_name,family_name and optionally
    gender,regime,caisse,affiliation,email_verified. Every row is checked first;
    if any is wrong, every bad line is reported and nothing is imported.
    """
    try:
        with open(csv_file, newline="", encoding="utf-8-sig") as fh:
            rows, problems = _read_csv(fh)
    except UnicodeDecodeError:
        raise click.ClickException(f"{csv_file} is not UTF-8 text.") from None

    first_line: dict[str, int] = {}
    for line, checked in rows:
        value = checked.values["nir"]
        if value in first_line:
            problems.append((line, f"NIR already on line {first_line[value]}"))
        else:
            first_line[value] = line
    existing = _existing_nirs(list(first_line))
    problems.extend(
        (line, "an account with this NIR already exists") for line, checked in rows if checked.values["nir"] in existing
    )

    if problems:
        for line, reason in sorted(problems):
            click.echo(f"line {line}: {reason}", err=True)
        bad_lines = len({line for line, _ in problems})
        raise click.ClickException(f"{bad_lines} invalid line(s) in {csv_file}; nothing imported.")
    if not rows:
        click.echo(f"No account in {csv_file}; nothing imported.")
        return

    # End the read transaction of the checks before the (slow) password hashing:
    # the unique index on the NIR still catches an account created meanwhile.
    db.session.rollback()
    db.session.add_all([_new_user(checked) for _, checked in rows])
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise click.ClickException(
            "An account with one of these NIRs was created meanwhile; nothing imported. Run the import again."
        ) from None
    click.echo(f"{len(rows)} user(s) imported.")


def _read_csv(fh) -> tuple[list[tuple[int, CheckedUser]], list[tuple[int, str]]]:
    """Checked rows with their line numbers, and (line, reason) for each problem found."""
    reader = csv.reader(fh, strict=True)
    header = next(reader, None)
    if header is None:
        return [], [(1, "the file is empty: a header line is expected")]
    header = [h.strip().lower() for h in header]
    missing = [c for c in CSV_REQUIRED if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    header_problems = []
    if missing:
        header_problems.append(f"missing column(s): {', '.join(missing)}")
    if unknown:
        header_problems.append(f"unknown column(s): {', '.join(unknown)} (expected {','.join(CSV_COLUMNS)})")
    if duplicated:
        header_problems.append(f"repeated column(s): {', '.join(duplicated)}")
    if header_problems:
        if len(header) == 1 and ";" in header[0]:
            header_problems.append("the separator must be a comma, not a semicolon")
        return [], [(1, "; ".join(header_problems))]

    rows: list[tuple[int, CheckedUser]] = []
    problems: list[tuple[int, str]] = []
    line_end = reader.line_num
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # an unterminated quote...: the lines after it cannot be trusted
            problems.append((line_end + 1, f"malformed CSV ({exc})"))
            break
        line, line_end = line_end + 1, reader.line_num  # a quoted field may span several lines
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            problems.append((line, f"expected {len(header)} fields, found {len(fields)}"))
            continue
        record = dict(zip(header, fields))
        try:
            verified = parse_bool(record.get("email_verified", ""), default=True)
        except ValueError as exc:
            problems.append((line, str(exc)))
            verified = True
        checked = check_user(
            nir_value=record["nir"],
            password=record["password"],
            email=record["email"],
            birth_date=record["birth_date"],
            given_name=record["given_name"],
            family_name=record["family_name"],
            gender=record.get("gender"),
            regime=record.get("regime"),
            caisse=record.get("caisse"),
            affiliation=record.get("affiliation"),
            email_verified=verified,
        )
        problems.extend((line, reason) for reason in checked.errors)
        if not checked.errors:
            rows.append((line, checked))
    return rows, problems


@users_group.command("show")
@click.argument("nir_value", metavar="NIR")
@with_appcontext
def show_command(nir_value: str) -> None:
    """Print an account (never its password hash)."""
    user = _account(nir_value)
    lines = [
        ("Id", user.id),
        ("NIR", user.nir),
        ("Given name", user.given_name),
        ("Family name", user.family_name),
        ("Birth date", user.birth_date.isoformat()),
        ("Gender", user.gender or "-"),
        ("Email", f"{user.email or '-'} ({'verified' if user.email_verified else 'not verified'})"),
        ("Regime", f"{user.regime_code} {user.regime_name or '(unknown)'}"),
        ("Caisse", user.caisse or "-"),
        ("Affiliation", user.affiliation),
        ("Password", "set" if user.password_hash else "not set"),
        ("Created", f"{user.created_at:%Y-%m-%d %H:%M:%S} UTC" if user.created_at else "-"),
        ("Trusted devices", _live_devices(user.id)),
        *[(label, f"locked until {until:%Y-%m-%d %H:%M:%S} UTC" if until else "-")
          for label, until in _locks(user.nir, user.id)],
    ]
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        click.echo(f"{label + ':':<{width + 1}} {value}")


def _account(nir_value: str) -> User:
    """The account of a NIR typed by an administrator, or the error that says why there is none."""
    problem = nir_problem(nir_value)
    if problem:
        raise click.ClickException(problem + ".")
    user = db.session.scalar(select(User).where(User.nir == nir.normalize(nir_value)))
    if user is None:
        raise click.ClickException("No account with this NIR.")
    return user


def _live_devices(user_id: int) -> int:
    from ..models import TrustedDevice

    return db.session.scalar(
        select(func.count()).select_from(TrustedDevice).where(
            TrustedDevice.user_id == user_id, TrustedDevice.revoked_at.is_(None), TrustedDevice.expires_at > utcnow()
        )
    )


def _locks(nir_value: str, user_id: int | None):
    """``(label, locked_until)`` for each limit: login cases 6, 5 and 3, forgotten-password case 2."""
    from .. import limits
    from ..login import policy

    from ..recovery.policy import reset_mail_quota

    yield "Password lock", limits.locked_until(policy.password_failures(), policy.nir_key(nir_value))
    yield "Reset-mail quota", limits.locked_until(reset_mail_quota(), policy.nir_key(nir_value))
    if user_id is not None:
        yield "Code lock", limits.locked_until(policy.code_failures(), policy.user_key(user_id))
        yield "Code quota", limits.locked_until(policy.code_quota(), policy.user_key(user_id))


@users_group.command("unlock")
@click.argument("nir_value", metavar="NIR")
@with_appcontext
def unlock_command(nir_value: str) -> None:
    """Lift the locks of a NIR: wrong passwords (case 6), wrong codes (case 5), code quota (case 3),
    reset-mail quota (forgotten password, case 2).

    Works for a NIR without an account too, since wrong passwords are counted per NIR typed.
    """
    from .. import limits
    from ..login import policy

    problem = nir_problem(nir_value)
    if problem:
        raise click.ClickException(problem + ".")
    normalized = nir.normalize(nir_value)
    user = db.session.scalar(select(User).where(User.nir == normalized))
    lifted = [label for label, until in _locks(normalized, user.id if user else None) if until]
    from ..recovery.policy import reset_mail_quota

    limits.unlock(policy.password_failures(), policy.nir_key(normalized))
    limits.unlock(reset_mail_quota(), policy.nir_key(normalized))
    if user is not None:
        limits.unlock(policy.code_failures(), policy.user_key(user.id))
        limits.unlock(policy.code_quota(), policy.user_key(user.id))
    kinds = {"Password lock": "password", "Reset-mail quota": "reset_mail", "Code lock": "code",
             "Code quota": "code_quota"}
    user_id = user.id if user is not None else None
    for label in lifted:
        audit.record("lock_lifted", user_id=user_id, nir=normalized, detail={"kind": kinds[label], "by": "admin"})
    audit.record("admin_unlocked", user_id=user_id, nir=normalized,
                 detail={"lifted": [kinds[label] for label in lifted]})
    db.session.commit()
    click.echo(f"Lifted: {', '.join(lifted)}." if lifted else "Nothing was locked; counters reset.")


@users_group.command("logout")
@click.argument("nir_value", metavar="NIR")
@with_appcontext
def logout_command(nir_value: str) -> None:
    """End every login session of a person, revoke their grants, and tell the relying parties.

    Each partner site that took part in one of the sessions and registered a
    back-channel logout URI gets a logout token (OIDC Back-Channel Logout 1.0); the
    command waits for those deliveries (retries included) before it exits.
    """
    from .. import sessions
    from ..oidc import backchannel

    user = _account(nir_value)
    ended = sessions.end_sessions(user.id)
    announcement = backchannel.sessions_ended(ended)
    audit.record("tokens_revoked", user_id=user.id, detail={"reason": "admin-logout", "sessions": len(ended)})
    db.session.commit()
    sent = announcement.send()
    click.echo(f"Ended {len(ended)} session(s); {sent} logout notice(s) to relying parties.")
    if sent and not backchannel.wait_for_deliveries(backchannel.longest_delivery()):
        click.echo("Some relying parties did not answer in time (see the warnings).", err=True)


@users_group.command("sessions")
@click.argument("nir_value", metavar="NIR")
@click.option("--end", "end", is_flag=True, help="End them all: every login session (with its grants, relying "
              "parties told by back-channel logout) and every trusted browser.")
@with_appcontext
def sessions_command(nir_value: str, end: bool) -> None:
    """List a person's live login sessions and trusted browsers (for the 3646 agents); --end ends them all.

    Audited either way (sessions_viewed, or sessions_ended and trusted_device_revoked), by: cli.
    """
    from .. import sessions
    from ..account import everywhere
    from ..mfa import devices
    from ..models import BrowserSession
    from ..oidc import backchannel

    user = _account(nir_value)
    live = [row for row in db.session.scalars(
        select(BrowserSession).where(BrowserSession.user_id == user.id, BrowserSession.ended_at.is_(None))
        .order_by(BrowserSession.created_at)) if sessions.is_live(row)]
    trusted = devices.live(user.id)
    click.echo(f"Sessions: {len(live)}")
    for row in live:
        click.echo(f"  since {row.created_at:%Y-%m-%d %H:%M:%S} UTC, last seen {row.last_seen_at:%Y-%m-%d %H:%M:%S} UTC, "
                   f"amr {' '.join(row.amr or []) or '-'}")
    click.echo(f"Trusted browsers: {len(trusted)}")
    for device in trusted:
        last = device.last_used_at or device.created_at
        click.echo(f"  {devices.describe(device.label) or 'unknown browser'}: trusted {device.created_at:%Y-%m-%d} "
                   f"until {device.expires_at:%Y-%m-%d}, last used {last:%Y-%m-%d %H:%M:%S} UTC")
    if not end:
        audit.record("sessions_viewed", user_id=user.id, detail={"by": "cli"})
        db.session.commit()
        return
    ended = everywhere.end_all(user.id, by="cli")
    forgotten = devices.revoke_all(user.id)
    if forgotten:
        audit.record("trusted_device_revoked", user_id=user.id, detail={"count": forgotten, "reason": "cli"})
    db.session.commit()
    sent = ended.announcement.send()
    click.echo(f"Ended {ended.sessions} session(s), revoked {ended.grants} grant(s) and {forgotten} trusted "
               f"browser(s); {sent} logout notice(s) to relying parties.")
    if sent and not backchannel.wait_for_deliveries(backchannel.longest_delivery()):
        click.echo("Some relying parties did not answer in time (see the warnings).", err=True)
@users_group.group("mfa")
def mfa_group() -> None:
    """The second factor without the mailbox: the authenticator app and the recovery codes (issue 12)."""


@mfa_group.command("reset")
@click.argument("nir_value", metavar="NIR")
@with_appcontext
def mfa_reset_command(nir_value: str) -> None:
    """Remove the authenticator app and the recovery codes of a person (the 3646 agents).

    Only after the identity check done on the phone: the person then logs in with the
    security code by mail, and may enrol an app again from « Mon compte – Sécurité ».
    """
    from ..mfa import recovery_codes, totp

    user = _account(nir_value)
    app = totp.remove(user, actor="cli")
    codes = recovery_codes.remove(user)
    audit.record("mfa_reset", user_id=user.id, nir=user.nir,
                 detail={"by": "cli", "app": app, "recovery_codes": codes})
    db.session.commit()
    if app or codes:
        click.echo(f"Removed: {'the authenticator app' if app else 'no authenticator app'}, "
                   f"{codes} recovery code(s).")
    else:
        click.echo("Nothing to remove: no authenticator app and no recovery code.")


COMMANDS = [users_group]
