"""The SQL statement budget: how many statements (and COMMITs) each request executes.

A change that makes a protocol endpoint or a login step run one more SQL statement
(or one more COMMIT) fails this test, and so does a change that saves one: the
table below is updated on purpose, in the same commit as the change, so that a
regression shows in CI without timing anything.

How to update :data:`BUDGET`
    Run ``.venv/bin/pytest tests/test_statement_budget.py`` (and again with
    ``IDP_TEST_DATABASE_URL=postgresql+psycopg://...`` for the PostgreSQL column).
    On a difference the test prints every row that moved with the statements of
    that request, and the whole table as measured, ready to paste. Check that the
    statements are the ones the change meant to add or remove, paste, and say so in
    the commit message. A new endpoint or login step gets a new row (and a request
    in :func:`test_statement_budget`).

How the counting works (see :class:`StatementCounter`)
    A ``before_cursor_execute`` listener on ``db.engine`` records every statement
    that SQLAlchemy sends to a DBAPI cursor, and a ``commit`` listener every COMMIT,
    but only while one request is measured and only from the thread that serves it:
    the requests go through Flask's in-process test client, so that thread is the
    test's own, and the test's set-up and checks (creating users, reading the mail)
    happen outside the measuring window. Each request runs in an empty
    ``contextvars`` context, so that Flask pushes a new application context for it
    as in production (its own ``g``, its own session, removed at the end) instead of
    reusing the ``app`` fixture's one, whose identity map would answer some queries.

    Nothing is excluded, because nothing else reaches the listener:

    * the SQLite PRAGMAs (:func:`idp.extensions._sqlite_pragmas`) run on a raw DBAPI
      cursor in the pool's ``connect`` event, and SQLAlchemy's first-connect dialect
      initialisation runs without events: the self-test measures the same request on
      a pooled connection and on a fresh one and gets the same count;
    * the ping of a connection that sat idle in the pool
      (:func:`idp.extensions._ping_if_idle`, in the pool's ``checkout`` event) runs on
      a raw DBAPI cursor: the self-test makes every checkout ping and checks that none
      is recorded. Pings are round trips all the same, but only after an idle second:
      the table reports the checkouts of each request for information (they are not
      part of the budget).

The signing keys are read by each process at most every ``IDP_KEY_CACHE_SECONDS``,
and a client authenticated on the back channel at most every ``IDP_CLIENT_CACHE_SECONDS``:
the test makes both periods long, so that whether a request reads the key or client
table does not depend on how long the previous ones took. The JWKS and the
``client_credentials`` exchange are measured once with their cache empty (first
request of the process, or of that client) and once with it filled; every other
request runs with them filled, as almost every request does in production.
"""

from __future__ import annotations

import base64
import contextvars
import json
import re
import time
import uuid
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace

import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import OctKey, RSAKey
from sqlalchemy import event, text, update
from sqlalchemy.pool import Pool

from conftest import CODE_RE, PASSWORD, csrf_token
from idp import extensions
from idp.extensions import db
from idp.models import BrowserSession, Client, utcnow
from mfa_pages import enrol, next_code
from oidc_flows import auth_params, jwt_parts, query, without_query

# --- The budget -------------------------------------------------------------------------------
#
# One row per request: (statements, COMMITs) on SQLite, then on PostgreSQL. The numbers are
# what the code does today: a change that adds a statement or a COMMIT fails the test, and
# so does one that saves one, until the row is updated. To update a row, follow "How to
# update BUDGET" in the module docstring: never raise a number without reading the
# statements the failure prints.
BACKENDS = ("sqlite", "postgresql")
BUDGET: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    #                                                                      SQLite     PostgreSQL
    "GET /.well-known/openid-configuration":                              ((0, 0),   (0, 0)),
    "GET /jwks.json (key cache empty)":                                   ((1, 0),   (1, 0)),
    "GET /jwks.json":                                                     ((0, 0),   (0, 0)),
    "GET /authorize (new login: starts a flow)":                          ((3, 1),   (3, 1)),
    "GET /connexion (step 0: password page)":                             ((1, 0),   (1, 0)),
    "POST /connexion password (step 0)":                                  ((6, 2),   (6, 2)),
    "GET /connexion (step 1: code request page)":                         ((1, 0),   (1, 0)),
    # Audit trail (idp.audit): + the one INSERT of the request's audit rows, before its existing COMMIT.
    # code_sent:
    "POST /connexion code request (step 1: sends the mail)":              ((5, 2),   (5, 2)),
    "GET /connexion (step 3: code page)":                                 ((1, 0),   (1, 0)),
    # login_succeeded; + the partner site's name for « Nouvelle connexion » (issue 12, mail on by default):
    "POST /connexion code (step 3: answers the relying party)":           ((14, 2),  (14, 2)),
    "POST /token authorization_code":                                     ((3, 1),   (3, 1)),
    "GET /userinfo":                                                      ((1, 0),   (1, 0)),
    # The token in the form body (RFC 6750 §2.2) and the signed answer (OIDC Core §5.3.2): the client's
    # setting comes with the token's joined SELECT, the key from the process's key cache.
    "POST /userinfo (token in the form body)":                            ((1, 0),   (1, 0)),
    "GET /userinfo (signed JWT)":                                         ((1, 0),   (1, 0)),
    "POST /introspect":                                                   ((1, 0),   (1, 0)),
    "POST /token refresh_token":                                          ((3, 1),   (3, 1)),
    # tokens_revoked (revocation-endpoint), on the request's connection:
    "POST /revoke access_token":                                          ((3, 1),   (3, 1)),
    "POST /revoke refresh_token":                                         ((4, 1),   (4, 1)),
    # client_credentials on PostgreSQL: autocommit, the INSERT commits itself (idp.oidc.store.autocommit).
    "POST /token client_credentials (client cache empty)":                ((2, 1),   (2, 0)),
    "POST /token client_credentials":                                     ((1, 1),   (1, 0)),
    "GET /authorize (single sign-on, live session)":                      ((9, 2),   (9, 2)),
    # Back-channel logout: + the UPDATE that revokes the session's grants, + the SELECT of the clients to tell.
    "POST /logout (id_token_hint of the session's person)":               ((7, 1),   (7, 1)),
    # trusted_device_added and login_succeeded, both rows in one INSERT; + the partner site's name (new login):
    "POST /connexion code + remember (step 3: trusts the browser)":       ((15, 2),  (15, 2)),
    # login_succeeded (method trusted-browser):
    "POST /connexion password on a trusted browser (finishes the login)": ((15, 2),  (15, 2)),
    # Signed client authentication (RFC 7523): the one INSERT recording the assertion's jti is the
    # only statement these methods add. Where the request commits nothing else (introspection,
    # client_credentials), SQLite commits it; PostgreSQL runs those in autocommit mode.
    "POST /token authorization_code (private_key_jwt)":                  ((4, 1),   (4, 1)),
    "POST /token refresh_token (private_key_jwt)":                       ((4, 1),   (4, 1)),
    "POST /introspect (private_key_jwt)":                                ((2, 1),   (2, 0)),
    # Its access token not revoked before (unlike the row above): one UPDATE more than there, plus the INSERT.
    # + tokens_revoked (revocation-endpoint):
    "POST /revoke refresh_token (private_key_jwt)":                      ((6, 1),   (6, 1)),
    "POST /token client_credentials (client_secret_jwt)":                ((2, 1),   (2, 0)),
    # Issue 12, a person with an authenticator app. The app is loaded with the person (a LEFT JOIN in the
    # flow's one SELECT): the journey of a person without one runs no statement more. The choice is the flow's
    # UPDATE. The app code: the mail code's reservation and release, the UPDATE that accepts the code once
    # (last_used_step) instead of reading and consuming the mail code, and the partner site's name (new login).
    "GET /connexion (step 1: factor choice, app enrolled)":               ((1, 0),   (1, 0)),
    "POST /connexion factor choice (step 1: the app)":                    ((2, 1),   (2, 1)),
    "GET /connexion (step 3: app code page)":                             ((1, 0),   (1, 0)),
    "POST /connexion app code (step 3: answers the relying party)":       ((13, 2),  (13, 2)),
    # The recovery code: reservation, the UPDATE that uses it once, release, the count left, recovery_code_used;
    # committed before its mail goes (no transaction open during SMTP), then the flow's step.
    "POST /connexion recovery code (step 3: mails the person)":           ((7, 3),   (7, 3)),
    # « Il vous en reste N »:
    "GET /connexion (recovery code used page)":                           ((2, 0),   (2, 0)),
    "POST /connexion recovery code used (answers the relying party)":     ((10, 1),  (10, 1)),
}

# The steady state: the key and client caches are filled once per test and never expire during it.
KEY_CACHE_SECONDS = 3600
CLIENT_CACHE_SECONDS = 3600


@pytest.fixture
def settings():
    # « Nouvelle connexion » on, as by default in production (conftest turns it off for the seed's tests).
    return {"KEY_CACHE_SECONDS": KEY_CACHE_SECONDS, "CLIENT_CACHE_SECONDS": CLIENT_CACHE_SECONDS,
            "NEW_LOGIN_MAIL": True}


# --- Counting ---------------------------------------------------------------------------------

@dataclass
class Count:
    statements: list[str] = field(default_factory=list)
    commits: int = 0
    checkouts: int = 0

    @property
    def row(self) -> tuple[int, int]:
        return len(self.statements), self.commits


class StatementCounter:
    """Counts what the database receives from the calling thread during :meth:`call`."""

    def __init__(self, engine):
        self.engine = engine
        self._thread: int | None = None
        self._count: Count | None = None

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._on_execute)
        event.listen(self.engine, "commit", self._on_commit)
        event.listen(self.engine, "checkout", self._on_checkout)  # a pool event, kept across dispose()
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "checkout", self._on_checkout)
        event.remove(self.engine, "commit", self._on_commit)
        event.remove(self.engine, "before_cursor_execute", self._on_execute)

    def _mine(self) -> bool:
        return self._count is not None and threading.get_ident() == self._thread

    def _on_execute(self, conn, cursor, statement, parameters, context, executemany):
        if self._mine():
            self._count.statements.append(" ".join(statement.split()))

    def _on_commit(self, conn):
        if self._mine():
            self._count.commits += 1

    def _on_checkout(self, dbapi_connection, record, proxy):
        if self._mine():
            self._count.checkouts += 1

    def call(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` measured, in an empty context (no application context pushed)."""
        assert self._count is None, "one measure at a time"
        count = Count()
        self._thread, self._count = threading.get_ident(), count
        try:
            result = contextvars.Context().run(fn, *args, **kwargs)
        finally:
            self._thread, self._count = None, None
        return result, count


class Meter:
    """Sends requests with a test client, each measured and recorded under a row of the budget."""

    def __init__(self, counter: StatementCounter):
        self.counter = counter
        self.measured: dict[str, Count] = {}

    def request(self, name: str, client, method: str, url: str, **kwargs):
        assert name not in self.measured, f"row measured twice: {name}"
        response, count = self.counter.call(client.open, url, method=method, **kwargs)
        self.measured[name] = count
        return response


@pytest.fixture
def counter(app):
    with StatementCounter(db.engine) as c:
        yield c


def backend_of(app) -> str:
    return db.engine.dialect.name


# --- The requests -----------------------------------------------------------------------------

def location(response) -> str:
    return response.headers["Location"]


def page_step(response) -> str | None:
    m = re.search(r'data-step="([a-z0-9-]+)"', response.get_data(as_text=True))
    return m.group(1) if m else None


def security_code(mailbox, email: str, after: int) -> str:
    mail = mailbox.wait_for(email, after=after)
    match = CODE_RE.search(mail.text_body() or "")
    assert match, "no code in the mail"
    return match.group(1)


def basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def signed_userinfo(client_pk: int, alg: str | None) -> None:
    """Set the client's ``userinfo_signed_response_alg`` beside the session (its objects stay loaded)."""
    with db.engine.begin() as conn:
        conn.execute(update(Client.__table__).where(Client.__table__.c.id == client_pk)
                     .values(userinfo_signed_response_alg=alg))


def test_statement_budget(app, counter, make_user, make_client, mailbox, tmp_path):
    meter = Meter(counter)
    client, secret = make_client()
    client_pk = client.id
    client_id, redirect_uri = client.client_id, client.redirect_uris[0]
    rp = SimpleNamespace(client_id=client_id, redirect_uris=[redirect_uri])  # plain values, no ORM object
    logout_uri = client.post_logout_redirect_uris[0]
    service, service_secret = make_client(grant_types=("client_credentials",), scope="openid")
    service_id = service.client_id
    person = make_user()
    nir, email = person.nir, person.email
    with_app = make_user()
    app_secret, app_codes = enrol(with_app)
    app_nir = with_app.nir
    db.session.remove()  # the test's own session holds nothing while requests run
    auth = basic(client_id, secret)

    # Public documents. The JWKS first with the key cache empty, then filled.
    web = app.test_client()
    r = meter.request("GET /.well-known/openid-configuration", web, "GET", "/.well-known/openid-configuration")
    assert r.status_code == 200 and r.json["jwks_uri"].endswith("/jwks.json")
    r = meter.request("GET /jwks.json (key cache empty)", web, "GET", "/jwks.json")
    assert r.status_code == 200 and len(r.json["keys"]) == 4
    r = meter.request("GET /jwks.json", web, "GET", "/jwks.json")
    assert r.status_code == 200 and len(r.json["keys"]) == 4

    # A new login, in one browser: the seed's happy path (password, then the code by mail).
    params, verifier = auth_params(rp)
    r = meter.request("GET /authorize (new login: starts a flow)", web, "GET", "/authorize", query_string=params)
    assert r.status_code == 302 and location(r).endswith("/connexion"), r.status_code
    page = meter.request("GET /connexion (step 0: password page)", web, "GET", "/connexion")
    assert page.status_code == 200 and page_step(page) == "password"
    r = meter.request("POST /connexion password (step 0)", web, "POST", "/connexion", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "nir": nir, "password": PASSWORD})
    assert r.status_code == 303 and location(r).endswith("/connexion"), r.status_code
    page = meter.request("GET /connexion (step 1: code request page)", web, "GET", "/connexion")
    assert page.status_code == 200 and page_step(page) == "code-request"
    mails = len(mailbox.to(email))
    r = meter.request("POST /connexion code request (step 1: sends the mail)", web, "POST", "/connexion",
                      data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert r.status_code == 303 and location(r).endswith("/connexion"), r.status_code
    code = security_code(mailbox, email, mails)
    page = meter.request("GET /connexion (step 3: code page)", web, "GET", "/connexion")
    assert page.status_code == 200 and page_step(page) == "code"
    r = meter.request("POST /connexion code (step 3: answers the relying party)", web, "POST", "/connexion",
                      data={"csrf_token": csrf_token(page.get_data(as_text=True)), "code": code})
    assert r.status_code == 303 and without_query(location(r)) == redirect_uri, (r.status_code, r.headers)
    callback = query(location(r))
    assert callback["state"] == params["state"]

    # The relying party's back channel. Its client is in the process's cache, as after its first call
    # (an unmeasured introspection of an unknown token puts it there).
    assert web.post("/introspect", headers=auth, data={"token": "unknown"}).json == {"active": False}
    r = meter.request("POST /token authorization_code", web, "POST", "/token", headers=auth, data={
        "grant_type": "authorization_code", "code": callback["code"], "redirect_uri": redirect_uri,
        "code_verifier": verifier})
    assert r.status_code == 200, r.json
    tokens = r.json
    assert jwt_parts(tokens["id_token"])[1]["acr"] == "urn:idp:acr:mfa"
    r = meter.request("GET /userinfo", web, "GET", "/userinfo",
                      headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert r.status_code == 200 and r.json["given_name"] == "Jeanne", r.json
    r = meter.request("POST /userinfo (token in the form body)", web, "POST", "/userinfo",
                      data={"access_token": tokens["access_token"]})
    assert r.status_code == 200 and r.json["given_name"] == "Jeanne", r.json
    signed_userinfo(client_pk, "RS256")
    r = meter.request("GET /userinfo (signed JWT)", web, "GET", "/userinfo",
                      headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert r.status_code == 200 and r.mimetype == "application/jwt", r.get_data(as_text=True)
    assert jwt_parts(r.get_data(as_text=True))[1]["given_name"] == "Jeanne"
    signed_userinfo(client_pk, None)
    r = meter.request("POST /introspect", web, "POST", "/introspect", headers=auth,
                      data={"token": tokens["access_token"]})
    assert r.status_code == 200 and r.json["active"] is True, r.json
    r = meter.request("POST /token refresh_token", web, "POST", "/token", headers=auth, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200, r.json
    refreshed = r.json
    r = meter.request("POST /revoke access_token", web, "POST", "/revoke", headers=auth,
                      data={"token": refreshed["access_token"]})
    assert r.status_code == 200, r.get_data(as_text=True)
    r = meter.request("POST /revoke refresh_token", web, "POST", "/revoke", headers=auth,
                      data={"token": refreshed["refresh_token"]})
    assert r.status_code == 200, r.get_data(as_text=True)
    for row in ("POST /token client_credentials (client cache empty)", "POST /token client_credentials"):
        r = meter.request(row, web, "POST", "/token",
                          headers=basic(service_id, service_secret), data={"grant_type": "client_credentials"})
        assert r.status_code == 200 and "refresh_token" not in r.json, r.json

    # Single sign-on: the same browser, its session live, answers at once. The person comes back
    # a minute later: timestamps are to the second, and a session touched in the second it was
    # opened would not change, so SQLAlchemy would skip its UPDATE (one statement less).
    db.session.execute(update(BrowserSession).values(last_seen_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    db.session.remove()
    params, _ = auth_params(rp)
    r = meter.request("GET /authorize (single sign-on, live session)", web, "GET", "/authorize",
                      query_string=params)
    assert r.status_code == 302 and without_query(location(r)) == redirect_uri, (r.status_code, r.headers)
    assert "code" in query(location(r))
    measure_signed_clients(app, meter, web, tmp_path)

    # RP-initiated logout, the hint naming the session's person: ends it at once.
    r = meter.request("POST /logout (id_token_hint of the session's person)", web, "POST", "/logout", data={
        "id_token_hint": tokens["id_token"], "client_id": client_id, "post_logout_redirect_uri": logout_uri,
        "state": "s"})
    assert r.status_code == 303 and without_query(location(r)) == logout_uri, (r.status_code, r.headers)

    # A trusted browser: a login that ticks « J'utilise mon ordinateur personnel », then,
    # the session gone, a login where the password finishes the journey.
    other = app.test_client()
    other.get("/authorize", query_string=auth_params(rp)[0])
    page = other.get("/connexion")
    other.post("/connexion", data={"csrf_token": csrf_token(page.get_data(as_text=True)), "nir": nir,
                                   "password": PASSWORD})
    page = other.get("/connexion")
    assert page_step(page) == "code-request"
    mails = len(mailbox.to(email))
    other.post("/connexion", data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    code = security_code(mailbox, email, mails)
    page = other.get("/connexion")
    assert page_step(page) == "code"
    r = meter.request("POST /connexion code + remember (step 3: trusts the browser)", other, "POST", "/connexion",
                      data={"csrf_token": csrf_token(page.get_data(as_text=True)), "code": code, "remember": "y"})
    assert r.status_code == 303 and without_query(location(r)) == redirect_uri, (r.status_code, r.headers)
    other.delete_cookie("idp_session")  # the session is over; the device cookie stays
    params, _ = auth_params(rp)
    r = other.get("/authorize", query_string=params)
    assert r.status_code == 302 and location(r).endswith("/connexion"), r.status_code
    page = other.get("/connexion")
    assert page_step(page) == "password"
    r = meter.request("POST /connexion password on a trusted browser (finishes the login)", other, "POST",
                      "/connexion", data={"csrf_token": csrf_token(page.get_data(as_text=True)), "nir": nir,
                                          "password": PASSWORD})
    assert r.status_code == 303 and without_query(location(r)) == redirect_uri, (r.status_code, r.headers)
    assert query(location(r))["state"] == params["state"]

    measure_second_factor(app, meter, rp, redirect_uri, app_nir, app_secret, app_codes)
    check_budget(backend_of(app), meter.measured)


def _up_to_choice(app, rp, nir: str):
    """A new browser, past the password of a person with an authenticator app (unmeasured)."""
    browser = app.test_client()
    unmeasured(browser.get, "/authorize", query_string=auth_params(rp)[0])
    page = unmeasured(browser.get, "/connexion")
    r = unmeasured(browser.post, "/connexion", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                                     "nir": nir, "password": PASSWORD})
    assert r.status_code == 303, (r.status_code, re.sub(r"<[^>]+>", " ", r.get_data(as_text=True))[-1500:])
    return browser


def measure_second_factor(app, meter: Meter, rp, redirect_uri: str, nir: str, secret: str, codes: list[str]):
    """Issue 12: the steps of a person with an authenticator app (the app, then a recovery code)."""
    browser = _up_to_choice(app, rp, nir)
    page = meter.request("GET /connexion (step 1: factor choice, app enrolled)", browser, "GET", "/connexion")
    assert page_step(page) == "factor-choice"
    r = meter.request("POST /connexion factor choice (step 1: the app)", browser, "POST", "/connexion",
                      data={"csrf_token": csrf_token(page.get_data(as_text=True)), "factor": "app"})
    assert r.status_code == 303 and location(r).endswith("/connexion"), r.status_code
    page = meter.request("GET /connexion (step 3: app code page)", browser, "GET", "/connexion")
    assert page_step(page) == "app-code"
    r = meter.request("POST /connexion app code (step 3: answers the relying party)", browser, "POST",
                      "/connexion", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                          "code": next_code(secret)})
    assert r.status_code == 303 and without_query(location(r)) == redirect_uri, (r.status_code, r.headers)

    browser = _up_to_choice(app, rp, nir)
    page = unmeasured(browser.get, "/connexion")
    unmeasured(browser.post, "/connexion", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                                 "factor": "app"})
    page = unmeasured(browser.get, "/connexion")
    unmeasured(browser.post, "/connexion", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                                 "action": "recovery"})
    page = unmeasured(browser.get, "/connexion")
    assert page_step(page) == "recovery-code"
    r = meter.request("POST /connexion recovery code (step 3: mails the person)", browser, "POST", "/connexion",
                      data={"csrf_token": csrf_token(page.get_data(as_text=True)), "code": codes[0]})
    assert r.status_code == 303 and location(r).endswith("/connexion"), r.status_code
    page = meter.request("GET /connexion (recovery code used page)", browser, "GET", "/connexion")
    assert page_step(page) == "recovery-notice"
    r = meter.request("POST /connexion recovery code used (answers the relying party)", browser, "POST",
                      "/connexion", data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert r.status_code == 303 and without_query(location(r)) == redirect_uri, (r.status_code, r.headers)


def _register(app, *args) -> dict:
    result = app.test_cli_runner().invoke(args=[
        "clients", "add", "--name", "Passerelle", "--redirect-uri", "http://127.0.0.1:8765/callback",
        "--scope", "openid profile", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def unmeasured(fn, *args, **kwargs):
    """A request in its own application context, as in production (nothing of it left in the test's ``g``)."""
    return contextvars.Context().run(fn, *args, **kwargs)


def measure_signed_clients(app, meter: Meter, browser, tmp_path) -> None:
    """private_key_jwt and client_secret_jwt clients, their client already in the cache (as for the others)."""
    issuer = app.config["IDP_ISSUER"]
    key = RSAKey.generate_key(2048, parameters={"kid": "budget"}, private=True)
    path = tmp_path / "jwks.json"
    with open(path, "w") as fh:
        json.dump({"keys": [key.as_dict(private=False)]}, fh)
    signed = _register(app, "--auth-method", "private_key_jwt", "--jwks", path)
    hashed = _register(app, "--auth-method", "client_secret_jwt", "--client-credentials")
    db.session.remove()

    def assertion(client_id: str, signing_key, alg: str) -> dict:
        now = int(time.time())
        claims = {"iss": client_id, "sub": client_id, "aud": issuer, "iat": now, "exp": now + 60,
                  "jti": uuid.uuid4().hex}
        header = {"alg": alg, "kid": "budget"} if alg == "RS256" else {"alg": alg}
        return {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": jose_jwt.encode(header, claims, signing_key)}

    def by_key():
        return assertion(signed["client_id"], key, "RS256")

    def by_secret():
        return assertion(hashed["client_id"], OctKey.import_key(hashed["client_secret"]), "HS256")

    for auth in (by_key(), by_secret()):  # each client in the process's cache, as after its first call
        r = unmeasured(browser.post, "/introspect", data={**auth, "token": "unknown"})
        assert r.json == {"active": False}, r.json

    rp = SimpleNamespace(client_id=signed["client_id"], redirect_uris=["http://127.0.0.1:8765/callback"])
    params, verifier = auth_params(rp, scope="openid profile")
    r = unmeasured(browser.get, "/authorize", query_string=params)  # single sign-on: the session is live
    assert r.status_code == 302 and "code" in query(location(r)), r.headers
    code = query(location(r))["code"]
    r = meter.request("POST /token authorization_code (private_key_jwt)", browser, "POST", "/token", data={
        **by_key(), "grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uris[0],
        "code_verifier": verifier})
    assert r.status_code == 200, r.json
    r = meter.request("POST /token refresh_token (private_key_jwt)", browser, "POST", "/token", data={
        **by_key(), "grant_type": "refresh_token", "refresh_token": r.json["refresh_token"]})
    assert r.status_code == 200, r.json
    tokens = r.json
    r = meter.request("POST /introspect (private_key_jwt)", browser, "POST", "/introspect",
                      data={**by_key(), "token": tokens["access_token"]})
    assert r.status_code == 200 and r.json["active"] is True, r.json
    r = meter.request("POST /revoke refresh_token (private_key_jwt)", browser, "POST", "/revoke",
                      data={**by_key(), "token": tokens["refresh_token"]})
    assert r.status_code == 200, r.get_data(as_text=True)
    r = meter.request("POST /token client_credentials (client_secret_jwt)", browser, "POST", "/token",
                      data={**by_secret(), "grant_type": "client_credentials"})
    assert r.status_code == 200, r.json


def check_budget(backend: str, measured: dict[str, Count]) -> None:
    """Every row measured, none missing, each equal to the budget; else a report ready to act on."""
    column = BACKENDS.index(backend)
    expected = {name: row[column] for name, row in BUDGET.items()}
    got = {name: count.row for name, count in measured.items()}
    if got == expected:
        return
    report = [f"SQL statement budget, {backend}: (statements, commits) differ from BUDGET.", ""]
    for name in [*expected, *(n for n in got if n not in expected)]:
        if got.get(name) == expected.get(name):
            continue
        report.append(f"{name}: budget {expected.get(name, 'no row')}, measured {got.get(name, 'not measured')}")
        if name in measured:
            report.append(f"  ({measured[name].checkouts} pool checkouts); statements in order:")
            report += [f"    {statement[:160]}" for statement in measured[name].statements]
    report += ["", "The table as measured (other backend's column kept), if the change is deliberate:", ""]
    for name in [*(n for n in BUDGET if n in got), *(n for n in got if n not in BUDGET)]:
        columns = list(BUDGET.get(name, ((0, 0), (0, 0))))
        columns[column] = got[name]
        key = f"{name!r}:".replace("'", '"') if "'" not in name else f"{name!r}:"
        report.append(f"    {key:<70} (({columns[0][0]}, {columns[0][1]}), ({columns[1][0]}, {columns[1][1]})),")
    pytest.fail("\n".join(report), pytrace=False)


# --- The counting machinery counts -------------------------------------------------------------

@pytest.fixture
def extra_work(app):
    """A ``before_request`` hook (registered before the app's first request) that, when asked,
    runs one more ``SELECT 1`` in the request's thread, optionally commits, and runs another
    query in a thread of its own (which must not be counted)."""
    asked: dict = {"select": False, "commit": False, "other_thread": False, "other_thread_ran": 0}

    def other_thread_query():
        with app.app_context():
            db.session.execute(text("SELECT 2")).scalar_one()
            db.session.remove()
        asked["other_thread_ran"] += 1

    @app.before_request
    def extra():
        if asked["select"]:
            db.session.execute(text("SELECT 1")).scalar_one()
        if asked["commit"]:
            db.session.commit()
        if asked["other_thread"]:
            worker = threading.Thread(target=other_thread_query)
            worker.start()
            worker.join(10)

    return asked


def test_counter_sees_one_more_statement_and_one_more_commit(app, counter, extra_work, monkeypatch):
    """The listener counts the request's statements and COMMITs, only those of its thread,
    and neither the connection set-up (SQLite PRAGMAs) nor the pings of idle pooled connections."""
    web = app.test_client()
    bogus = {"Authorization": "Bearer not-a-token"}

    def measure():
        response, count = counter.call(web.get, "/userinfo", headers=bogus)
        assert response.status_code == 401
        return count

    # Every checkout of a pooled connection pings it (idle for at least 0 s), on a raw DBAPI cursor.
    assert not db.engine.pool._pre_ping
    monkeypatch.setattr(extensions, "PING_AFTER_IDLE", 0.0)
    pings = []
    real_ping = extensions._ping_if_idle

    def counted_ping(dbapi_connection, record, proxy):
        before = record.info.get("idp_idle_since")
        real_ping(dbapi_connection, record, proxy)
        pings.append(before is not None)

    event.remove(Pool, "checkout", real_ping)
    event.listen(Pool, "checkout", counted_ping)
    try:
        db.engine.dispose()  # a fresh connection: connect event (PRAGMAs on SQLite), nothing to ping
        fresh = measure()
        assert fresh.statements and fresh.checkouts == 1 and pings == [False]
        pooled = measure()  # the pooled connection: pinged at checkout, the ping not recorded
    finally:
        event.remove(Pool, "checkout", counted_ping)
        event.listen(Pool, "checkout", real_ping)
    assert pooled.statements == fresh.statements and pooled.commits == fresh.commits
    assert pings == [False, True] and pooled.checkouts == 1
    assert not any(s.upper().startswith("PRAGMA") or s == "SELECT 1" for s in fresh.statements + pooled.statements)

    extra_work["other_thread"] = True  # a query in another thread during the request: not counted
    other = measure()
    assert extra_work["other_thread_ran"] == 1
    assert other.statements == pooled.statements and other.commits == pooled.commits

    extra_work["select"] = True
    one_more = measure()
    assert one_more.statements == ["SELECT 1", *pooled.statements]
    assert one_more.commits == pooled.commits

    extra_work["commit"] = True
    with_commit = measure()
    assert with_commit.row == (len(pooled.statements) + 1, pooled.commits + 1)

    # And the budget check passes on the table's own numbers, and fails once a row is one off.
    column = BACKENDS.index(backend_of(app))
    as_budgeted = {name: Count(["SELECT 1"] * row[column][0], row[column][1]) for name, row in BUDGET.items()}
    check_budget(backend_of(app), as_budgeted)
    statements, commits = BUDGET["GET /userinfo"][column]
    as_budgeted["GET /userinfo"] = Count(["SELECT 1"] * (statements + 1), commits)
    with pytest.raises(pytest.fail.Exception, match=re.escape(
            f"GET /userinfo: budget {(statements, commits)}, measured {(statements + 1, commits)}")):
        check_budget(backend_of(app), as_budgeted)
