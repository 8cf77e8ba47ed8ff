"""A worker killed with SIGKILL in the middle of logins leaves no half-written state (issue 7, §2).

On the production server (``idp serve``: granian, 2 workers × 4 threads), 16 people log in at the
same time, each in their own browser: authorization request, password, code
request, code, token exchange. While they run, writes are held back for a
moment — on SQLite another process holds the write lock (``BEGIN EXCLUSIVE``);
on PostgreSQL the ``authorization_codes`` table is locked, so that the last
step of a login stops *inside* its transaction, after it has marked its flow
completed and written its session and grant — and the worker holding the most
of those requests is killed with SIGKILL. Then the lock is released.

Afterwards, in the database: every completed login has its browser session,
its grant (same nonce) and its authorization code; nothing exists without what
it belongs to; no counter went past its policy; no code was consumed by a login
that did not complete, and each authorization code gave tokens at most once.
The server replaced the worker, and every one of the 16 people logs in again.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import SimpleNamespace

import psycopg
import requests
from sqlalchemy import select

from conftest import Browser
from idp.extensions import db
from idp.login import policy
from idp.models import AuthorizationCode, BrowserSession, Grant, Limit, LoginFlow, Token, User
from login_pages import Journey, step_of

PEOPLE = 16


@dataclass
class Outcome:
    person: object
    steps: list[str] = field(default_factory=list)
    interrupted: str | None = None  # the step whose request died with the worker
    tokens: dict | None = None


STEPS = ("password", "code request", "code", "token")


class Start:
    """Brings each login to the step it is given, holds it there, and lets them all go at once."""

    def __init__(self, count: int):
        self.ready = threading.Semaphore(0)
        self.go = threading.Event()
        self.count = count

    def hold(self, name: str, pause_before: str | None) -> None:
        if name == pause_before:
            self.ready.release()
            assert self.go.wait(60)

    def wait_ready(self) -> None:
        for _ in range(self.count):
            assert self.ready.acquire(timeout=60), "a login did not reach its step"


def log_in(url, browser, client, secret, person, outcome: Outcome, start: Start | None = None,
           pause_before: str | None = None) -> Outcome:
    """One whole login and its token exchange; stops at the first request the kill cut off."""
    j = Journey(url, browser, client, secret)

    def step(name, action):
        if start is not None:
            start.hold(name, pause_before)
        try:
            result = action()
        except requests.ConnectionError:
            outcome.interrupted = name
            raise
        outcome.steps.append(name)
        return result

    try:
        page = step("authorize", j.start)
        assert step_of(page) == "password", page.text[:300]
        page = step("password", lambda: j.password(person))
        assert step_of(page) == "code-request", page.text[:300]
        page = step("code request", j.request_code)
        assert step_of(page) == "code", page.text[:300]
        code = j.code(person.email)
        answer = step("code", lambda: j.enter_code(code, follow=False))
        got = j.callback(answer)
        r = step("token", lambda: browser.post(f"{url}/token", auth=(client.client_id, secret), timeout=60, data={
            "grant_type": "authorization_code", "code": got["code"], "redirect_uri": j.params["redirect_uri"],
            "code_verifier": j.verifier}))
        assert r.status_code == 200, r.text
        outcome.tokens = r.json()
    except requests.ConnectionError:
        pass
    return outcome


def sockets(pid: int, matches) -> int:
    """Open TCP connections of process ``pid`` whose (local port, remote port) ``matches`` (read from /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            next(fh)
            for line in fh:
                fields = line.split()
                local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
                if state == "01" and matches(int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)):
                    inodes.add(inode)
    held = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            held += 1
    return held


class WriteHold:
    """Writes wait for a while: SQLite's write lock, or PostgreSQL's ``authorization_codes`` table."""

    def __init__(self, url: str):
        self.url = url

    def __enter__(self):
        if self.url.startswith("sqlite"):
            import sqlite3

            self.conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
            self.conn.execute("BEGIN EXCLUSIVE")
        else:
            self.conn = psycopg.connect(self.url.replace("postgresql+psycopg://", "postgresql://", 1))
            self.conn.execute("LOCK TABLE authorization_codes IN EXCLUSIVE MODE")
        return self

    def in_transaction(self, pid: int, http_port: int) -> int:
        """How many requests worker ``pid`` has stopped by the hold.

        PostgreSQL: its connections whose session waits on the lock, its transaction begun
        (matched by port through /proc). SQLite: its HTTP connections (a wait in SQLite's
        busy handler cannot be seen from outside; every request the test sent is one).
        """
        if self.url.startswith("sqlite"):
            return sockets(pid, lambda local, remote: local == http_port)
        with psycopg.connect(self.url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True) as c:
            ports = {row[0] for row in c.execute(
                "SELECT client_port FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()")}
        return sockets(pid, lambda local, remote: local in ports)

    def __exit__(self, *exc):
        self.conn.rollback()
        self.conn.close()


def test_a_worker_killed_during_logins_leaves_no_half_written_state(
        database_url, app, make_served, rp, make_user, mailbox):
    url, _ = database_url
    server = make_served()
    client, secret = rp
    people = [make_user() for _ in range(PEOPLE)]
    # Plain values: the threads have no app context for the ORM.
    client_values = SimpleNamespace(client_id=client.client_id, redirect_uris=list(client.redirect_uris))
    persons = [SimpleNamespace(id=p.id, nir=p.nir, email=p.email) for p in people]
    workers = server.workers()

    start = Start(PEOPLE)
    with ThreadPoolExecutor(max_workers=PEOPLE) as pool:
        # Four logins wait before each of the password, the code request, the code and the token exchange.
        futures = [pool.submit(log_in, server.url, Browser(mailbox), client_values, secret, person,
                               Outcome(person), start, STEPS[i % len(STEPS)]) for i, person in enumerate(persons)]
        start.wait_ready()
        with WriteHold(url) as hold:
            start.go.set()
            deadline = time.monotonic() + 20
            while True:  # until a worker has requests stopped inside the database
                time.sleep(0.3)
                held = {pid: hold.in_transaction(pid, server.port) for pid in workers}
                victim = max(held, key=held.get)
                if held[victim] >= 2:
                    break
                assert time.monotonic() < deadline, f"no worker reached the hold: {held}"
            server.kill_worker(victim)
            time.sleep(0.3)
        outcomes = [f.result() for f in futures]

    interrupted = [o for o in outcomes if o.interrupted]
    finished = [o for o in outcomes if o.tokens]
    assert interrupted, "the kill cut off no request"
    # Every login the kill did not touch went through to its tokens.
    assert len(finished) + len(interrupted) == PEOPLE, [(o.steps, o.interrupted) for o in outcomes]

    # The server replaced the worker.
    deadline = time.monotonic() + 30
    while not (len(server.workers()) == 2 and victim not in server.workers()):
        assert time.monotonic() < deadline, "the server did not replace the killed worker"
        time.sleep(0.1)

    # The same people log in again, all of them, in parallel.
    with ThreadPoolExecutor(max_workers=PEOPLE) as pool:
        again = list(pool.map(lambda p: log_in(server.url, Browser(mailbox), client_values, secret, p, Outcome(p)),
                              persons))
    assert all(o.tokens and not o.interrupted for o in again), [(o.steps, o.interrupted) for o in again]

    check_invariants(app, people_count=PEOPLE, logins_finished=len(finished) + PEOPLE)
    logs = server.logs()
    assert "Traceback" not in logs
    assert "Unexpected exit from worker-" in logs and "Respawning worker-" in logs  # the server saw it die
    statuses = server.statuses()
    assert len(statuses) >= PEOPLE
    assert not [s for s in statuses if s >= 500], statuses


def check_invariants(app, people_count: int, logins_finished: int) -> None:
    db.session.rollback()
    flows = db.session.scalars(select(LoginFlow)).all()
    sessions = db.session.scalars(select(BrowserSession)).all()
    grants = db.session.scalars(select(Grant)).all()
    codes = db.session.scalars(select(AuthorizationCode)).all()
    tokens = db.session.scalars(select(Token)).all()
    user_ids = set(db.session.scalars(select(User.id)).all())
    assert len(user_ids) == people_count

    completed = [f for f in flows if f.completed_at is not None]
    grants_by_nonce = {g.nonce: g for g in grants}
    codes_by_grant = {}
    for c in codes:
        codes_by_grant.setdefault(c.grant_id, []).append(c)
    for flow in completed:
        # A completed login has its session, its grant (the nonce of its request) and its code.
        grant = grants_by_nonce.get(flow.authorization_params["nonce"])
        assert grant is not None and grant.user_id == flow.user_id, flow.id
        assert len(codes_by_grant.get(grant.id, [])) == 1, flow.id
        assert any(s.user_id == flow.user_id and s.auth_time == grant.auth_time for s in sessions), flow.id
    # Nothing without what it belongs to: a session, a grant or a code is a completed login's.
    assert len(sessions) == len(completed) == len(grants) == len(codes)
    assert all(g.user_id in user_ids for g in grants)
    # A code is consumed only by the login that completes with it.
    assert all(f.completed_at is not None for f in flows if f.code_sent_at is not None and f.code_hash is None)
    # Each authorization code gave tokens at most once: one token per grant, and only from a used code.
    tokens_by_grant = {}
    for t in tokens:
        tokens_by_grant.setdefault(t.grant_id, []).append(t)
    assert all(len(ts) == 1 for ts in tokens_by_grant.values())
    assert all(codes_by_grant[g][0].used_at is not None for g in tokens_by_grant)
    assert len(tokens) == logins_finished
    # No counter past its policy.
    lock_at = {p.kind: p.lock_at for p in (policy.password_failures(), policy.code_failures(), policy.code_quota())}
    rows = db.session.scalars(select(Limit)).all()
    assert all(r.kind in lock_at and r.count <= lock_at[r.kind] for r in rows), \
        [(r.kind, r.count) for r in rows]
