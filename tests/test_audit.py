"""Issue 10, audit trail: one row per security event, in the transaction of the change it records.

Over real HTTP (the served provider in this process, ``live_server``; the
production server with several workers for the race), on SQLite and PostgreSQL:

* the login journey and the seed's cases 1 to 8 (ameli-login-journey): the exact rows,
  event and case, person, client, and no secret in any column (no password, code,
  NIR in clear, e-mail, token, link);
* the forgotten-password journey (ameli-forgot-password): asked, refused (cases 1 and 2), done;
* a double submit that is rolled back leaves no row (a database outage neither: the snapshot of
  every table in tests/test_outage_database.py includes ``audit_events``);
* 50 wrong passwords at once on 2 workers: exactly one failure row per attempt answered,
  and one ``lock_set``;
* the domain counters (Prometheus default registry) move with the rows;
* ``idp audit`` answers for a person (Paris and UTC times, filters, JSON), ``idp purge`` keeps
  ``IDP_AUDIT_RETENTION`` days, and on PostgreSQL the queries of one person and the purge use
  the indexes (EXPLAIN).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest
import requests
from prometheus_client import REGISTRY
from sqlalchemy import func, insert, select, text, update

from conftest import PASSWORD, csrf_token, make_nir
from idp import audit
from idp.cli.audit import all_query, person_query
from idp.extensions import db
from idp.models import AuditEvent, User, utcnow
from idp.oidc.acr import ACR_DEVICE, ACR_MFA
from login_pages import CASE4_PASSWORD, Journey, expire_codes, fresh, outcome, page_text, race, step_of
from recovery_pages import ANSWER, NEW_PASSWORD, SENT, Recovery

WRONG = "Mauvais-1234"
FIELDS = ("event", "case", "user_id", "client_id")


@pytest.fixture
def settings():
    return {"CAPTCHA_TEST_ANSWER": ANSWER}


def rows() -> list[AuditEvent]:
    return fresh(select(AuditEvent).order_by(AuditEvent.id))


def summary(events=None) -> list[tuple]:
    return [tuple(getattr(e, f) for f in FIELDS) for e in (rows() if events is None else events)]


def assert_no_secret(*secrets: str) -> None:
    """No column of any audit row holds one of ``secrets`` (nor its normalised form)."""
    dump = json.dumps([[str(getattr(e, c.name)) for c in AuditEvent.__table__.c] for e in rows()])
    for secret in secrets:
        if secret:
            assert secret not in dump and secret.replace(" ", "") not in dump, secret


def counter(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- Login journey ---------------------------------------------------------------------------------

def test_login_journey_steps_each_leave_their_row(journey, user, rp):
    client_id = rp[0].client_id
    before = {"fail4": counter("idp_logins_total", outcome="failure", case="4"),
              "ok": counter("idp_logins_total", outcome="success", case=""),
              "sent": counter("idp_codes_sent_total")}
    journey.start()
    assert journey.password(user, password=WRONG).status_code == 401   # case 4
    journey.up_to_code_entry(user)                                      # step 0, step 1: code sent
    code = journey.code(user.email)
    wrong_code = "000000" if code != "000000" else "111111"
    assert journey.enter_code(wrong_code).status_code == 401           # case 4 on the code
    r = journey.enter_code(code, remember=True)                         # step 3, the browser trusted
    journey.callback(r)

    assert summary() == [
        ("login_failed", 4, user.id, client_id),
        ("code_sent", None, user.id, client_id),
        ("login_failed", 4, user.id, client_id),
        ("trusted_device_added", None, user.id, client_id),
        ("login_succeeded", None, user.id, client_id),
    ]
    events = rows()
    assert events[0].detail == {"step": "password"} and events[2].detail == {"step": "code"}
    assert events[-1].detail == {"acr": ACR_MFA, "amr": ["pwd", "otp", "mfa"], "method": "mail-code"}
    # Every login row carries the keyed hash of the NIR (one person across rows), never the NIR.
    assert {e.nir_hash for e in events if e.event.startswith("login")} == {audit.nir_hash(user.nir)}
    assert all(e.ip == "127.0.0.1" and e.at is not None for e in events)
    assert_no_secret(user.nir, PASSWORD, WRONG, code, wrong_code, user.email, *journey.browser.cookies.values())

    assert counter("idp_logins_total", outcome="failure", case="4") == before["fail4"] + 2
    assert counter("idp_logins_total", outcome="success", case="") == before["ok"] + 1
    assert counter("idp_codes_sent_total") == before["sent"] + 1


def test_trusted_browser_login_says_so(new_journey, browser, new_browser, user, rp):
    browser.finish_login(_authorize(new_journey(browser)), user, remember=True)
    start = len(rows())
    later = new_browser()  # the same computer another day: the device cookie, no login session
    later.cookies.set("idp_device", browser.cookies.get("idp_device"))
    j = new_journey(later)
    j.start()
    j.callback(j.password(user, follow=False))
    last = rows()[start:]
    assert summary(last) == [("login_succeeded", None, user.id, rp[0].client_id)]
    assert last[0].detail == {"acr": ACR_DEVICE, "amr": ["pwd"], "method": "trusted-browser"}


def _authorize(journey: Journey) -> str:
    journey.start()
    return journey.step_url


def test_case6_three_wrong_passwords_lock_and_the_next_is_refused(journey, user, rp):
    before = counter("idp_locks_total", kind="password")
    journey.start()
    for _ in range(3):
        journey.password(user, password=WRONG)
    assert journey.password(user).status_code == 429  # the right one, refused unverified
    assert summary() == [
        ("login_failed", 4, user.id, rp[0].client_id),
        ("login_failed", 4, user.id, rp[0].client_id),
        ("login_failed", 6, user.id, rp[0].client_id),
        ("lock_set", 6, user.id, rp[0].client_id),
        ("login_failed", 6, None, rp[0].client_id),  # refused before any lookup: the NIR's hash only
    ]
    events = rows()
    assert events[3].detail["kind"] == "password"
    assert events[4].detail == {"step": "password", "refused": True}
    assert events[4].nir_hash == audit.nir_hash(user.nir)
    assert counter("idp_locks_total", kind="password") == before + 1


def test_case4_on_a_nir_without_account_is_kept_by_its_hash(journey, app):
    nobody = make_nir(dept="13")
    journey.start()
    r = journey.password(nir=nobody, password=WRONG)
    assert r.status_code == 401 and CASE4_PASSWORD in page_text(r.text)
    (event,) = rows()
    assert (event.event, event.case, event.user_id, event.nir_hash) == \
        ("login_failed", 4, None, audit.nir_hash(nobody))
    assert_no_secret(nobody, WRONG)


def test_case5_three_wrong_codes_lock_the_account(journey, user):
    journey.up_to_code_entry(user)
    code = journey.code(user.email)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(3):
        journey.enter_code(wrong)
    journey.enter_code(code)  # refused: locked
    assert [(e.event, e.case) for e in rows()][1:] == [
        ("login_failed", 4), ("login_failed", 4), ("login_failed", 5), ("lock_set", 5), ("login_failed", 5)]
    assert rows()[-1].detail == {"step": "code", "refused": True}


def test_case2_expired_code(journey, user):
    journey.up_to_code_entry(user)
    expire_codes()
    journey.enter_code(journey.code(user.email))
    assert [(e.event, e.case) for e in rows()][-1] == ("login_failed", 2)


def test_case3_code_quota_blocks_once(journey, user, app):
    journey.up_to_code_entry(user)
    quota = app.config["IDP_CODE_QUOTA"]
    before = counter("idp_quota_blocks_total", kind="code")
    for _ in range(quota):  # the first code was sent by step 1: the last of these is one too many
        journey.resend()
    events = [(e.event, e.case) for e in rows()]
    assert events.count(("code_sent", None)) == quota
    assert events[-3:] == [("code_sent", None), ("login_failed", 3), ("quota_blocked", 3)]
    journey.resend()
    assert [(e.event, e.case) for e in rows()][-1] == ("login_failed", 3)
    assert rows()[-1].detail == {"step": "code-request", "refused": True}
    assert counter("idp_quota_blocks_total", kind="code") == before + 1


@pytest.mark.parametrize("field, value, case", [("affiliation", "none", 7), ("affiliation", "pending", 8),
                                               ("email_verified", False, 1)])
def test_cases_7_8_1_after_the_password(journey, make_user, field, value, case):
    user = make_user(**{field: value})
    journey.start()
    journey.password(user)
    journey.get()  # a reload of the case page is not another refusal
    assert summary() == [("login_failed", case, user.id, journey.client.client_id)]


def test_double_submit_of_the_last_step_records_one_login(journey, user):
    page = journey.up_to_code_entry(user)
    code = journey.code(user.email)
    cookies = journey.browser.cookies.get_dict()
    sessions = []
    for _ in range(6):
        s = requests.Session()
        s.cookies.update(cookies)
        sessions.append(s)
    responses = race([(s, journey.step_url, {"csrf_token": csrf_token(page.text), "code": code})
                      for s in sessions])
    assert Counter(outcome(r) for r in responses)[303] == 1
    assert [e.event for e in rows()].count("login_succeeded") == 1


# --- Forgotten password ---------------------------------------------------------------------------

def test_recovery_journey_rows(live_server, browser, mailbox, user, make_user):
    recovery = Recovery(live_server.url, browser, mailbox)
    link = recovery.request_link(user)
    # A NIR without an account: the same page, a row kept by the NIR's hash.
    nobody = make_nir(dept="13")
    recovery.start()
    assert recovery.ask(nobody).posted.headers["Location"] == SENT
    r = recovery.set_password(link)
    assert r.status_code == 200, r.text[:300]
    no_mail = make_user(email_verified=False)
    recovery.start()
    assert recovery.ask(no_mail.nir).status_code == 403
    events = rows()
    assert [(e.event, e.case, e.user_id) for e in events] == [
        ("password_reset_requested", None, user.id),
        ("password_reset_requested", None, None),
        ("password_reset_done", None, user.id),
        ("password_reset_refused", 1, no_mail.id),
    ]
    assert events[1].nir_hash == audit.nir_hash(nobody) and events[1].detail == {"matched": False}
    token = link.partition("#")[2]
    assert_no_secret(user.nir, nobody, NEW_PASSWORD, token, user.email)


def test_recovery_case2_quota(live_server, browser, mailbox, user, app):
    recovery = Recovery(live_server.url, browser, mailbox)
    before = counter("idp_password_resets_total", outcome="refused")
    for _ in range(app.config["IDP_RESET_MAIL_QUOTA"] + 2):
        recovery.start()
        recovery.ask(user.nir)
    events = [(e.event, e.case) for e in rows()]
    quota = app.config["IDP_RESET_MAIL_QUOTA"]
    assert events == [("password_reset_requested", None)] * quota + [
        ("password_reset_refused", 2), ("quota_blocked", 2), ("password_reset_refused", 2)]
    assert counter("idp_password_resets_total", outcome="refused") == before + 2


def test_password_change_revokes_devices_and_tokens_with_rows(live_server, browser, mailbox, user, op, rp):
    op.tokens(rp[0], rp[1], user)
    recovery = Recovery(live_server.url, browser, mailbox)
    assert recovery.set_password(recovery.request_link(user)).status_code == 200
    events = [e.event for e in rows()]
    assert "password_reset_done" in events and "tokens_revoked" in events
    revoked = [e for e in rows() if e.event == "tokens_revoked"][0]
    assert revoked.detail["reason"] == "password-reset"


# --- Tokens ---------------------------------------------------------------------------------------

def test_refresh_reuse_and_revocation_endpoint(op, rp, user):
    client, secret = rp
    before = counter("idp_refresh_reuse_detected_total")
    first, _ = op.tokens(client, secret, user)
    second = op.refresh(client, secret, first["refresh_token"]).json()
    start = len(rows())
    assert op.refresh(client, secret, first["refresh_token"]).status_code == 400  # reuse
    # Refreshing and userinfo leave no row: only security events do.
    assert summary(rows()[start:]) == [("tokens_revoked", None, user.id, client.client_id)]
    assert rows()[-1].detail["reason"] == "refresh-reuse"
    assert counter("idp_refresh_reuse_detected_total") == before + 1
    assert_no_secret(first["refresh_token"], second["refresh_token"], first["access_token"], secret)

    other, _ = op.tokens(client, secret, user)
    r = requests.post(f"{op.url}/revoke", auth=(client.client_id, secret),
                      data={"token": other["refresh_token"]}, timeout=10)
    assert r.status_code == 200
    assert rows()[-1].event == "tokens_revoked"
    assert rows()[-1].detail == {"reason": "revocation-endpoint", "token_type": "refresh_token"}


def test_hot_token_paths_leave_no_row(op, rp, user):
    client, secret = rp
    tokens, _ = op.tokens(client, secret, user)
    start = len(rows())
    new = op.refresh(client, secret, tokens["refresh_token"]).json()
    assert op.userinfo(new["access_token"]).status_code == 200
    assert op.is_active(client, secret, new["access_token"]) is True
    assert len(rows()) == start


# --- Concurrency on the production server ---------------------------------------------------------

def test_fifty_parallel_wrong_passwords_one_row_each_and_one_lock(served, rp, user, app):
    posts = []
    for _ in range(50):
        j = Journey(served.url, requests.Session(), rp[0], rp[1])
        page = j.start()
        posts.append((j.browser, j.step_url, {"csrf_token": csrf_token(page.text), "nir": user.nir,
                                              "password": WRONG}))
    responses = race(posts)
    statuses = Counter(outcome(r) for r in responses)
    limit = app.config["IDP_MAX_PASSWORD_FAILURES"]
    assert statuses == {401: limit - 1, 429: 50 - (limit - 1)}, statuses
    events = Counter((e.event, e.case, bool(e.detail and e.detail.get("refused"))) for e in rows())
    # Verified: limit - 1 wrong (case 4) and the one that locked (case 6); refused unverified: the rest.
    assert events == {("login_failed", 4, False): limit - 1, ("login_failed", 6, False): 1,
                      ("lock_set", 6, False): 1, ("login_failed", 6, True): 50 - limit}, events


# --- Administration -------------------------------------------------------------------------------

def _cli(app, *args):
    result = app.test_cli_runner().invoke(args=list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_admin_commands_leave_their_rows(app, user):
    out = _cli(app, "clients", "add", "--name", "Partenaire", "--redirect-uri", "https://rp.example/cb").output
    client_id = next(line.split()[1] for line in out.splitlines() if line.startswith("client_id:"))
    _cli(app, "clients", "update", client_id, "--rotate-secret")
    _cli(app, "clients", "remove", client_id)
    _cli(app, "keys", "rotate")
    _cli(app, "users", "unlock", user.nir)
    _cli(app, "users", "logout", user.nir)
    events = rows()
    assert [(e.event, e.client_id) for e in events[:3]] == [
        ("client_added", client_id), ("client_changed", client_id), ("client_removed", client_id)]
    assert events[1].detail == {"changed": ["client_secret"]}
    assert {e.event for e in events[3:]} >= {"key_rotated", "admin_unlocked", "tokens_revoked"}
    assert [e.detail["reason"] for e in events if e.event == "tokens_revoked"] == ["admin-logout"]
    secret = next(line.split()[1] for line in out.splitlines() if line.startswith("client_secret:"))
    assert_no_secret(secret, user.nir)


def test_admin_unlock_lifts_a_lock_with_a_row(journey, user, app):
    journey.start()
    for _ in range(3):
        journey.password(user, password=WRONG)
    _cli(app, "users", "unlock", user.nir)
    events = rows()
    assert [(e.event, e.detail) for e in events[-2:]] == [
        ("lock_lifted", {"kind": "password", "by": "admin"}), ("admin_unlocked", {"lifted": ["password"]})]


def test_idp_audit_answers_for_one_person(journey, user, app):
    journey.start()
    journey.password(user, password=WRONG)
    nobody = make_nir(dept="13")
    journey.password(nir=nobody, password=WRONG)
    journey.password(user)

    out = _cli(app, "audit", "--nir", user.nir).output
    assert "login_failed" in out and "case 4" in out and " Paris (" in out and " UTC)" in out
    assert nobody not in out and user.nir not in out

    lines = [json.loads(line) for line in _cli(app, "audit", "--nir", user.nir, "--json").output.splitlines()]
    assert [(r["event"], r["case"]) for r in lines] == [("login_failed", 4)]
    assert lines[0]["at"].endswith("Z") and lines[0]["at_paris"][-6:] in ("+01:00", "+02:00")

    # A NIR without an account: its attempts, by the hash.
    lines = [json.loads(line) for line in _cli(app, "audit", "--nir", nobody, "--json").output.splitlines()]
    assert [(r["event"], r["user_id"]) for r in lines] == [("login_failed", None)]

    # Filters: the event, the time (Paris time without an offset, or UTC with Z).
    assert _cli(app, "audit", "--event", "code_sent", "--json").output == ""
    later = (utcnow() + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%MZ")
    assert _cli(app, "audit", "--nir", user.nir, "--since", later, "--json").output == ""
    earlier = (utcnow() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%MZ")
    assert len(_cli(app, "audit", "--since", earlier, "--json").output.splitlines()) == 2
    assert len(_cli(app, "audit", "--limit", "1", "--json").output.splitlines()) == 1
    bad = app.test_cli_runner().invoke(args=["audit", "--since", "hier"])
    assert bad.exit_code != 0 and "2026-12-01T10:00" in bad.output


def test_idp_purge_keeps_the_retention(app):
    now = utcnow()
    retention = app.config["IDP_AUDIT_RETENTION"]
    assert retention == 365
    with app.app_context():
        db.session.execute(insert(AuditEvent), [
            {"at": now - timedelta(days=retention + 1), "event": "key_rotated"},
            {"at": now - timedelta(days=retention - 1), "event": "client_added"},
        ])
        db.session.commit()
    out = _cli(app, "purge").output
    assert any(line.split() == ["audit_events", "1"] for line in out.splitlines()), out
    assert [e.event for e in rows()] == ["client_added"]


# --- Indexes (PostgreSQL) -------------------------------------------------------------------------

def test_one_persons_query_and_the_purge_use_the_indexes(app, database_url):
    """EXPLAIN: the plans read the indexes, never the whole table (no 100 million rows loaded here)."""
    postgresql = database_url[0].startswith("postgresql")
    with app.app_context():
        if postgresql:
            # Enough rows, over many people, for the planner to prefer an index to a scan of the table.
            db.session.execute(text(
                "INSERT INTO audit_events (at, event, user_id, nir_hash) "
                "SELECT now() - (i || ' seconds')::interval, 'login_failed', i % 5000, md5(i::text) "
                "FROM generate_series(1, 60000) AS i"))
            db.session.execute(text("ANALYZE audit_events"))
            db.session.commit()
        explain = "EXPLAIN" if postgresql else "EXPLAIN QUERY PLAN"
        full_scan = "Seq Scan on audit_events" if postgresql else "SCAN audit_events"

        def plan(sql) -> str:
            return "\n".join(str(r[-1]) for r in db.session.execute(text(f"{explain} {sql}")))

        statements = {
            "person": person_query(42, audit.nir_hash(make_nir()), limit=100),
            "person, since": person_query(42, audit.nir_hash(make_nir()), since=utcnow() - timedelta(days=1)),
            "NIR without account": person_query(None, audit.nir_hash(make_nir())),
            "all, since": all_query(since=utcnow() - timedelta(minutes=1)),
            "all, the newest": all_query(limit=100),
            "one event, since": all_query(event="lock_set", since=utcnow() - timedelta(minutes=1)),
        }
        for name, statement in statements.items():
            compiled = statement.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True})
            got = plan(compiled)
            # (SQLite's "SCAN … USING INDEX ix_audit_events_at" is the index walked in order, up to the LIMIT.)
            table_scans = [line for line in got.splitlines() if full_scan in line and "USING" not in line]
            assert not table_scans and "ix_audit_events_" in got, (name, got)
        got = plan(f"DELETE FROM audit_events WHERE at < '{(utcnow() - timedelta(days=365)).isoformat(' ')}'")
        assert "ix_audit_events_at" in got and full_scan not in got, got
        db.session.rollback()


def test_every_event_and_counter_is_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for name in audit.EVENTS:
        assert f"| `{name}` |" in readme, name
    for metric in (audit.LOGINS, audit.CODES_SENT, audit.LOCKS, audit.QUOTA_BLOCKS, audit.REFRESH_REUSE,
                   audit.PASSWORD_RESETS):
        assert f"| `{metric._name}_total` |" in readme, metric._name
