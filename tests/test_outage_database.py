"""A database outage costs the person nothing and answers clearly (issue 7, section 2).

On the production server (``idp serve``: granian, 2 workers × 4 threads), logins and tokens are
prepared, then the database fails, then comes back, without a restart:

* **locked** (SQLite and PostgreSQL): another process holds the database's write
  lock — on SQLite ``BEGIN EXCLUSIVE`` past the busy timeout (shortened with
  ``IDP_DATABASE_BUSY_TIMEOUT``), on PostgreSQL every table in ``EXCLUSIVE`` mode
  past ``lock_timeout`` (set in the URL, as an operator would). Reads go on:
  what only reads answers as usual; every write answers 503, and
  ``/authorize``, whose redirect URI was verified before the write failed,
  sends ``temporarily_unavailable`` to the relying party.
* **cut** (PostgreSQL, through the TCP proxy of :mod:`tcp_proxy`): requests
  waiting inside a transaction lose their connection when the proxy stops,
  then every request finds the database unreachable; ``/authorize`` can then
  verify no redirect URI and shows the French page.

Each time: 503 with ``Retry-After`` (``temporarily_unavailable`` in the JSON of
the protocol endpoints, the French « Service momentanément indisponible » page
elsewhere), no other 5xx, one WARNING line per failed request and no traceback,
not one row of the database changed (no attempt counted, no code consumed, no
token rotated or revoked), and afterwards the same requests succeed.

Whatever a worker writes to stderr — a traceback from any library included — lands
in the server's log the test reads.
"""

from __future__ import annotations

import re
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace
from urllib.parse import urlparse

import psycopg
import pytest
import requests
from sqlalchemy import select

from conftest import BACKENDS
from idp.errors import RETRY_AFTER
from idp.extensions import db
from idp.messages import msg
from login_pages import Journey, page_text, password_limit, step_of
from oidc_flows import assert_error_redirect, auth_params, query

ROUNDS = 2  # every request is sent this many times while the database is down
LOG_LINE = "WARNING in errors: Database unavailable ("


@pytest.fixture
def settings():
    # A code issued before the outage is still valid when the database comes back. The signing
    # keys are read at every request (no key cache), so that the JWKS depends on the database
    # here as every other read does, whatever the timing: in production a process serves it
    # from its key cache for up to IDP_KEY_CACHE_SECONDS of an outage.
    return {"AUTHORIZATION_CODE_LIFETIME": 600, "KEY_CACHE_SECONDS": 0}


# --- The outages -------------------------------------------------------------------------------

class SQLiteLock:
    """Another process holds the write lock of the SQLite file: readers go on (WAL), writers wait, then fail."""

    reads_work = True

    def __init__(self, url: str):
        self.path = url.removeprefix("sqlite:///")
        self.env = {"IDP_DATABASE_BUSY_TIMEOUT": "0.8"}
        self.conn: sqlite3.Connection | None = None

    def begin(self) -> None:
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute("BEGIN EXCLUSIVE")

    def end(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


def libpq_url(url: str) -> str:
    """``postgresql+psycopg://…`` → ``postgresql://…`` for psycopg itself."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


class PostgresLock:
    """A session holds every table in EXCLUSIVE mode (a migration, a maintenance): reads go on, writes time out."""

    reads_work = True

    def __init__(self, url: str):
        self.url = url
        self.env = {"IDP_DATABASE_URL": url + "?options=-c%20lock_timeout%3D800"}
        self.conn: psycopg.Connection | None = None

    def begin(self) -> None:
        self.conn = lock_every_table(self.url)

    def end(self) -> None:
        self.conn.rollback()
        self.conn.close()


def lock_every_table(url: str) -> psycopg.Connection:
    conn = psycopg.connect(libpq_url(url))
    tables = ", ".join(t.name for t in db.metadata.sorted_tables)
    conn.execute(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")
    return conn


# --- What is prepared before the outage ------------------------------------------------------------

def plain(rp, user) -> tuple[SimpleNamespace, str, SimpleNamespace]:
    """The client and the person as plain values: the test's threads have no app context for the ORM."""
    client, secret = rp
    return (SimpleNamespace(client_id=client.client_id, redirect_uris=list(client.redirect_uris)), secret,
            SimpleNamespace(id=user.id, nir=user.nir, email=user.email))


@dataclass
class Stage:
    tokens: dict           # from a finished login: access_token, refresh_token
    sso: requests.Session  # the browser of that login: its provider session is live
    pending: dict          # a finished login whose code is not exchanged yet: code, params, verifier
    at_password: Journey   # a login at the password page
    at_code: Journey       # a login at the code page, its code in the mailbox
    code: str


def finished_login(url, browser, client, secret, user) -> tuple[Journey, dict]:
    j = Journey(url, browser, client, secret)
    j.up_to_code_entry(user)
    got = j.callback(j.enter_code(j.code(user.email), follow=False))
    return j, got


def exchange(url, client, secret, journey: Journey, code: str) -> requests.Response:
    return requests.post(f"{url}/token", auth=(client.client_id, secret), timeout=30, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": journey.params["redirect_uri"],
        "code_verifier": journey.verifier})


def prepare(url, new_browser, client, secret, user) -> Stage:
    first, got = finished_login(url, new_browser(), client, secret, user)
    r = exchange(url, client, secret, first, got["code"])
    assert r.status_code == 200, r.text
    second, pending = finished_login(url, new_browser(), client, secret, user)
    at_code = Journey(url, new_browser(), client, secret)
    at_code.up_to_code_entry(user)
    code = at_code.code(user.email)
    at_password = Journey(url, new_browser(), client, secret)
    assert step_of(at_password.start()) == "password"
    return Stage(tokens=r.json(), sso=first.browser, pending={"journey": second, "code": pending["code"]},
                 at_password=at_password, at_code=at_code, code=code)


def calls(url, stage: Stage, client, secret, user) -> dict:
    """Every kind of request a person or a relying party makes, by name (each call is a new request)."""
    basic = (client.client_id, secret)
    bearer = {"Authorization": f"Bearer {stage.tokens['access_token']}"}

    def authorize(session):
        params, _ = auth_params(client)
        r = session.get(f"{url}/authorize", params=params, allow_redirects=False, timeout=30)
        r.sent_params = params
        return r

    return {
        "discovery": lambda: requests.get(f"{url}/.well-known/openid-configuration", timeout=30),
        "jwks": lambda: requests.get(f"{url}/jwks.json", timeout=30),
        "authorize": lambda: authorize(requests.Session()),
        "authorize with a session": lambda: authorize(stage.sso),
        "login page": lambda: stage.at_password.get(),
        "login password": lambda: stage.at_password.password(user, follow=False),
        "login code": lambda: stage.at_code.enter_code(stage.code, follow=False),
        "token code": lambda: exchange(url, client, secret, stage.pending["journey"], stage.pending["code"]),
        "token refresh": lambda: requests.post(f"{url}/token", auth=basic, timeout=30, data={
            "grant_type": "refresh_token", "refresh_token": stage.tokens["refresh_token"]}),
        "userinfo": lambda: requests.get(f"{url}/userinfo", headers=bearer, timeout=30),
        "introspect": lambda: requests.post(f"{url}/introspect", auth=basic, timeout=30,
                                            data={"token": stage.tokens["access_token"]}),
        "revoke": lambda: requests.post(f"{url}/revoke", auth=basic, timeout=30,
                                        data={"token": stage.tokens["access_token"]}),
        "forgotten password": lambda: requests.get(f"{url}/mot-de-passe-oublie", timeout=30),
    }


def send(named_calls: dict, names) -> list[tuple[str, requests.Response]]:
    names = list(names)
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(zip(names, pool.map(lambda n: named_calls[n](), names)))


# --- What the answers must be -------------------------------------------------------------------

def retry_after(r: requests.Response) -> None:
    # RETRY_AFTER seconds; Flask-Limiter restates it on the forgotten-password pages, counted from its own clock.
    assert RETRY_AFTER - 2 <= int(r.headers["Retry-After"]) <= RETRY_AFTER, r.headers.get("Retry-After")


def unavailable_json(r: requests.Response) -> None:
    assert r.status_code == 503, (r.status_code, r.text[:300])
    retry_after(r)
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json()["error"] == "temporarily_unavailable", r.text
    assert r.headers["Cache-Control"] == "no-store"


def unavailable_page(r: requests.Response) -> None:
    assert r.status_code == 503, (r.status_code, r.text[:300])
    retry_after(r)
    assert "Location" not in r.headers
    assert r.headers["Content-Type"].startswith("text/html") and '<html lang="fr">' in r.text
    text = page_text(r.text)
    assert msg("unavailable_title") in text and msg("unavailable") in text and "3646" in text, text[:500]


def unavailable_redirect(issuer: str):
    def check(r: requests.Response) -> None:
        assert_error_redirect(r, r.sent_params["redirect_uri"], "temporarily_unavailable",
                              r.sent_params["state"], issuer)
    return check


def ok(status: int, holds=None):
    def _check(r: requests.Response) -> None:
        assert r.status_code == status, (r.status_code, r.text[:300])
        assert holds is None or holds(r), r.text[:300]
    return _check


def expected_while_down(issuer: str, reads_work: bool) -> dict:
    """How each request must be answered: reads as usual when the database still reads."""
    read_json = ok(200) if reads_work else unavailable_json
    return {
        "discovery": ok(200),  # served without the database
        "jwks": read_json,
        "authorize": unavailable_redirect(issuer) if reads_work else unavailable_page,
        "authorize with a session": unavailable_redirect(issuer) if reads_work else unavailable_page,
        "login page": ok(200, lambda r: step_of(r) == "password") if reads_work else unavailable_page,
        "login password": unavailable_page,
        "login code": unavailable_page,
        "token code": unavailable_json,
        "token refresh": unavailable_json,
        "userinfo": read_json,
        "introspect": ok(200, lambda r: r.json()["active"] is True) if reads_work else unavailable_json,
        "revoke": unavailable_json,
        "forgotten password": unavailable_page,
    }


def failed(r: requests.Response) -> bool:
    """An answer that says the database failed: a 503, or the error sent to the relying party."""
    return r.status_code == 503 or "error=temporarily_unavailable" in r.headers.get("Location", "")


def snapshot() -> dict:
    """Every row of every table, as committed now."""
    db.session.rollback()
    return {t.name: sorted(map(repr, db.session.execute(select(t)).all())) for t in db.metadata.sorted_tables}


def app_log_lines(server) -> list[str]:
    """What the application (or a library) wrote: neither the access log nor the server's own lines."""
    return server.app_lines()


def access_statuses(server) -> list[int]:
    return server.statuses()


def check_answers(answers, expected) -> None:
    for name, r in answers:
        try:
            expected[name](r)
        except AssertionError as error:
            raise AssertionError(f"{name}: {error}") from error


# --- After the outage: the same requests succeed ---------------------------------------------------

def check_recovery(server, stage: Stage, client, secret, user, workers: list[int]) -> None:
    url = server.url
    named = calls(url, stage, client, secret, user)
    # The code issued before the outage was not consumed; the tokens were neither rotated nor revoked.
    r = named["token code"]()
    assert r.status_code == 200 and r.json()["id_token"], r.text
    r = named["userinfo"]()
    assert r.status_code == 200 and r.json()["sub"], r.text
    r = named["introspect"]()
    assert r.status_code == 200 and r.json()["active"] is True, r.text
    r = named["token refresh"]()
    assert r.status_code == 200 and r.json()["refresh_token"] != stage.tokens["refresh_token"], r.text
    # The logins in progress go on from where they were.
    r = stage.at_password.password(user)
    assert step_of(r) == "code-request", (r.status_code, page_text(r.text)[:300])
    got = stage.at_code.callback(stage.at_code.enter_code(stage.code, follow=False))
    assert exchange(url, client, secret, stage.at_code, got["code"]).status_code == 200
    # New authorization requests, with and without a provider session.
    r = named["authorize"]()
    assert r.status_code == 302 and r.headers["Location"].endswith("/connexion"), r.status_code
    r = named["authorize with a session"]()
    assert r.status_code == 302 and query(r.headers["Location"]).get("code"), r.headers.get("Location")
    for name in ("jwks", "forgotten password", "login page"):
        assert named[name]().status_code == 200, name
    # No attempt was counted for the person: the right password, then the right code, reset them.
    row = password_limit(user.nir)
    assert row is None or row.count == 0
    # Recovered by the same workers: nothing was restarted.
    assert sorted(server.workers()) == sorted(workers)


def check_logs(server, failures: int) -> None:
    lines = app_log_lines(server)
    assert "Traceback" not in server.logs()
    assert all(LOG_LINE in line for line in lines), [line for line in lines if LOG_LINE not in line][:5]
    assert len(lines) == failures, (len(lines), failures)
    statuses = access_statuses(server)
    assert not [s for s in statuses if s >= 500 and s != 503], statuses


# --- The tests ---------------------------------------------------------------------------------------

LOCKED = [pytest.param(backend, id=backend) for backend in BACKENDS]


@pytest.mark.parametrize("database_url", LOCKED, indirect=True)
def test_a_locked_database_answers_503_changes_nothing_and_recovers(
        database_url, app, make_served, rp, user, new_browser):
    url, _ = database_url
    outage = SQLiteLock(url) if url.startswith("sqlite") else PostgresLock(url)
    server = make_served(extra_env=outage.env)
    client, secret, user = plain(rp, user)
    stage = prepare(server.url, new_browser, client, secret, user)
    named = calls(server.url, stage, client, secret, user)
    expected = expected_while_down(server.url, outage.reads_work)
    workers = server.workers()
    before = snapshot()
    log_lines_before = len(app_log_lines(server))

    outage.begin()
    try:
        answers = send(named, [n for _ in range(ROUNDS) for n in named])
    finally:
        outage.end()

    check_answers(answers, expected)
    assert snapshot() == before  # nothing was written: no attempt counted, no code used, no token touched
    failures = sum(failed(r) for _, r in answers)
    assert failures == ROUNDS * sum(1 for n in named if n not in ("discovery", "jwks", "login page", "userinfo",
                                                                  "introspect"))
    assert log_lines_before == 0
    check_logs(server, failures)
    check_recovery(server, stage, client, secret, user, workers)
    check_logs(server, failures)  # and nothing more once the database is back


if "postgresql" in BACKENDS:
    # No more than a worker's threads (4): each request in flight is surely being served, not queued.
    IN_FLIGHT = ("authorize", "login code", "token code", "token refresh")

    @pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
    def test_a_cut_connection_to_postgresql_answers_503_changes_nothing_and_recovers(
            database_url, app, make_served, tcp_proxy, rp, user, new_browser):
        url, _ = database_url
        target = urlparse(url)
        proxy = tcp_proxy(target.hostname, target.port or 5432)
        proxied = f"postgresql+psycopg://{target.username}@127.0.0.1:{proxy.port}{target.path}"
        server = make_served(extra_env={"IDP_DATABASE_URL": proxied})
        client, secret, user = plain(rp, user)
        stage = prepare(server.url, new_browser, client, secret, user)
        named = calls(server.url, stage, client, secret, user)
        workers = server.workers()
        before = snapshot()
        assert proxy.accepted >= 1  # the server does reach PostgreSQL through the proxy

        # 1. Writes in flight: each waits inside its transaction behind a lock, then its connection is cut.
        holder = lock_every_table(url)
        try:
            with ThreadPoolExecutor(max_workers=len(IN_FLIGHT)) as pool:
                futures = [(n, pool.submit(named[n])) for n in IN_FLIGHT]
                wait_for_lock_waiters(url, len(IN_FLIGHT))
                proxy.stop()
                in_flight = [(n, f.result()) for n, f in futures]
        finally:
            holder.rollback()
            holder.close()
        wait_until_gone(url, proxy.upstream_ports)
        expected = expected_while_down(server.url, reads_work=False)
        # Their redirect URI was verified before the cut: the relying party is told.
        expected["authorize"] = unavailable_redirect(server.url)
        check_answers(in_flight, expected)

        # 2. While the database is unreachable: every request that needs it.
        answers = send(named, [n for _ in range(ROUNDS) for n in named])
        check_answers(answers, expected_while_down(server.url, reads_work=False))
    
        proxy.start()
        assert snapshot() == before
        failures = sum(failed(r) for _, r in in_flight + answers)
        assert failures == len(IN_FLIGHT) + ROUNDS * (len(named) - 1)  # all but discovery
        check_logs(server, failures)
        check_recovery(server, stage, client, secret, user, workers)
        check_logs(server, failures)


def wait_for_lock_waiters(url: str, count: int, timeout: float = 20) -> None:
    """Until ``count`` sessions of this database wait on a lock (the requests are inside their transaction)."""
    dbname = urlparse(url).path.lstrip("/")
    deadline = time.monotonic() + timeout
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                                   "AND wait_event_type = 'Lock'", (dbname,)).fetchone()[0]
            if waiting >= count:
                return
            time.sleep(0.05)
    raise AssertionError(f"{waiting} of {count} requests reached the lock")


def wait_until_gone(url: str, ports: set[int], timeout: float = 20) -> None:
    """Until PostgreSQL has ended every session that came through the proxy (their transactions rolled back)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        while time.monotonic() < deadline:
            alive = {row[0] for row in conn.execute("SELECT client_port FROM pg_stat_activity WHERE client_port IS NOT NULL")}
            if not alive & ports:
                return
            time.sleep(0.05)
    raise AssertionError("sessions cut by the proxy are still alive in PostgreSQL")



# --- A bug is not an outage ------------------------------------------------------------------------

BUGS = {
    "syntax error": "SELEC 1",                       # SQLite: OperationalError (SQLITE_ERROR); PostgreSQL: ProgrammingError
    "missing table": "SELECT * FROM no_such_table",  # SQLite: OperationalError (SQLITE_ERROR); PostgreSQL: ProgrammingError
    "constraint": "INSERT INTO clients (id) VALUES (NULL)",  # IntegrityError
}


@pytest.mark.parametrize("statement", BUGS.values(), ids=BUGS.keys())
def test_a_programming_error_stays_a_500_with_its_traceback(app, web, caplog, statement):
    from sqlalchemy import text

    def broken():
        db.session.execute(text(statement))
        return "unreachable"

    app.add_url_rule("/_broken", "broken", broken)
    app.add_url_rule("/token/_broken", "broken_json", broken)
    with caplog.at_level("WARNING"):
        page = web.get("/_broken")
        api = web.get("/token/_broken")
    assert page.status_code == 500 and "Retry-After" not in page.headers
    assert api.status_code == 500 and api.json == {"error": "server_error"}
    assert [r.levelname for r in caplog.records] == ["ERROR", "ERROR"]
    assert all(r.exc_info for r in caplog.records)  # logged with its traceback, to be fixed
    assert web.get("/jwks.json").status_code == 200  # and the session is usable again
