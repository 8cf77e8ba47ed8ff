"""OpenID Connect Back-Channel Logout 1.0, seen by real relying parties' logout endpoints.

Each partner's ``backchannel_logout_uri`` is a real HTTP server of the test (:class:`Receiver`)
that validates every logout token as §2.6 asks, with Authlib's JOSE implementation (not the
library the provider signs with) against the provider's JWKS fetched over HTTP. The person
logs out by GET and by POST (RP-Initiated Logout), an administrator ends their sessions
(``idp users logout``), their password is reset through the real recovery pages (seed 004
step 6): every client that took part in the ended session gets one token, no other does.
A receiver that is slow, down or answering 500 never holds the person's page, gets its
retries, and no more than configured.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
import requests
from prometheus_client import REGISTRY
from sqlalchemy import select

from conftest import csrf_token, free_port
from idp.extensions import db
from idp.models import BrowserSession, Client
from idp.oidc import backchannel
from login_pages import fresh
from oidc_flows import OP, assert_oauth_error, auth_params, jwt_parts, query
from recovery_pages import ANSWER, Recovery

with warnings.catch_warnings():  # Authlib's own JOSE implementation (deprecated for joserfc, which signs here)
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.jose import JsonWebKey, JsonWebToken

EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGGED_OUT = "http://127.0.0.1:8765/logged-out"
RETRIES = 2
BACKOFF = 0.3


@pytest.fixture
def settings():
    return {"BACKCHANNEL_LOGOUT_RETRIES": RETRIES, "BACKCHANNEL_LOGOUT_BACKOFF": BACKOFF,
            "BACKCHANNEL_LOGOUT_TIMEOUT": 3.0, "CAPTCHA_TEST_ANSWER": ANSWER}


# --- The relying parties' back-channel logout endpoint ---------------------------------------------

def validate_logout_token(token: str, issuer: str, client_id: str) -> dict:
    """Back-Channel Logout §2.6, as a relying party does it: signature against the JWKS (over HTTP),
    ``iss``, ``aud``, ``iat``, ``exp``, ``typ``, ``events``, ``sub``/``sid``, and no ``nonce``."""
    jwks = requests.get(f"{issuer}/jwks.json", timeout=10).json()
    claims = JsonWebToken(["RS256", "ES256"]).decode(token, JsonWebKey.import_key_set(jwks), claims_options={
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": client_id},
        "iat": {"essential": True},
        "exp": {"essential": True},
        "jti": {"essential": True},
    })
    claims.validate(leeway=5)
    assert claims.header["typ"] == "logout+jwt", claims.header
    assert claims.header["alg"] in ("RS256", "ES256") and claims.header["kid"]
    assert isinstance(claims["events"], dict) and claims["events"].get(EVENT) == {}, claims
    assert "nonce" not in claims, "a logout token never carries a nonce (§2.4)"
    assert claims.get("sid") or claims.get("sub")
    assert claims["iat"] <= time.time() + 5 and 0 < claims["exp"] - claims["iat"] <= 600, claims
    return dict(claims)


class Receiver:
    """The back-channel logout endpoints of several relying parties: one real HTTP server, one path each.

    Every POST is recorded with what validation found; ``status`` is what it answers (200 by
    default), ``hold`` an event each request waits for before answering (a slow partner).
    """

    def __init__(self, issuer: str):
        self.issuer = issuer
        self.audience: dict[str, str] = {}   # path → client_id
        self.status = 200
        self.statuses: dict[str, int] = {}  # path → status, instead of ``status``
        self.hold: threading.Event | None = None
        self.arrived = threading.Event()
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.port = free_port()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = parse_qs(body)
                path = self.path.lstrip("/")
                record = {"path": path, "content_type": self.headers.get("Content-Type"), "form": form,
                          "at": time.monotonic()}
                try:
                    [token] = form["logout_token"]
                    record["claims"] = validate_logout_token(token, receiver.issuer, receiver.audience[path])
                    record["token"] = token
                except Exception as exc:  # noqa: BLE001 - recorded, and the test fails on it
                    record["error"] = repr(exc)
                with receiver.lock:
                    receiver.requests.append(record)
                receiver.arrived.set()
                if receiver.hold is not None:
                    receiver.hold.wait(30)
                status = 400 if "error" in record else receiver.statuses.get(path, receiver.status)
                self.send_response(status)
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def got(self, path: str) -> list[dict]:
        with self.lock:
            found = [r for r in self.requests if r["path"] == path]
        for r in found:
            assert "error" not in r, r["error"]
            assert r["content_type"] == "application/x-www-form-urlencoded", r["content_type"]
        return found

    def close(self):
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(live_server):
    r = Receiver(live_server.url)
    yield r
    assert backchannel.wait_for_deliveries(30)
    r.close()


@pytest.fixture
def partner(make_client, receiver):
    """A relying party registered with a back-channel logout URI on the receiver: ``(client, secret)``."""

    def _make(path: str, uri: str | None = None, **kwargs):
        client, secret = make_client(post_logout_redirect_uris=(LOGGED_OUT,), **kwargs)
        client.backchannel_logout_uri = uri or receiver.url(path)
        db.session.commit()
        receiver.audience[path] = client.client_id
        return client, secret

    return _make


def settle() -> None:
    """Every delivery of this process is done (delivered, refused or given up)."""
    assert backchannel.wait_for_deliveries(30), "deliveries still running"


def sid_of(tokens: dict) -> str:
    return jwt_parts(tokens["id_token"])[1]["sid"]


def sub_of(tokens: dict) -> str:
    return jwt_parts(tokens["id_token"])[1]["sub"]


@pytest.fixture
def sessions3(op, partner, make_user, new_browser):
    """Browser 1: Jeanne at partners a and b (single sign-on: one session). Browser 2: Jeanne again, at
    a and c (her second session). Browser 3: Paul at c."""
    a, b, c = partner("a"), partner("b"), partner("c")
    jeanne, paul = make_user(), make_user(given_name="Paul")
    second, third = OP(op.url, new_browser()), OP(op.url, new_browser())
    s1 = {"a": op.tokens(*a, jeanne)[0], "b": op.tokens(*b, jeanne)[0]}
    s2 = {"a": second.tokens(*a, jeanne)[0], "c": second.tokens(*c, jeanne)[0]}
    s3 = {"c": third.tokens(*c, paul)[0]}
    assert len({sid_of(s1["a"]), sid_of(s2["a"]), sid_of(s3["c"])}) == 3
    return {"clients": {"a": a, "b": b, "c": c}, "s1": s1, "s2": s2, "s3": s3, "jeanne": jeanne}


def assert_told(receiver: Receiver, path: str, *sessions: dict) -> None:
    """The partner at ``path`` got exactly one logout token per session given (its ID tokens there),
    naming that session (``sid``) and the person as that partner knows them (``sub``)."""
    got = sorted((r["claims"]["sid"], r["claims"]["sub"]) for r in receiver.got(path))
    assert got == sorted((sid_of(t), sub_of(t)) for t in sessions), (path, got)


# --- sid in ID tokens (Back-Channel Logout §2.1, Front-Channel Logout §3) ------------------------------

def test_2_1_every_id_token_of_a_session_carries_its_sid_refreshed_ones_too(op, partner, make_user, new_browser):
    a, b = partner("a"), partner("b")
    jeanne = make_user()
    first, _ = op.tokens(*a, jeanne)
    sso, _ = op.tokens(*b, jeanne)
    sid = sid_of(first)
    assert sid and sid_of(sso) == sid, "one browser session, one sid for every client"
    assert len(sid) >= 22 and sid != op.browser.cookies.get("idp_session")
    refreshed = op.refresh(*a, first["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert sid_of(refreshed.json()) == sid
    # Another browser is another session.
    elsewhere, _ = OP(op.url, new_browser()).tokens(*a, jeanne)
    assert sid_of(elsewhere) != sid
    # The same person logging in again in this browser (prompt=login) keeps the session's sid.
    again, _ = op.tokens(*a, jeanne, prompt="login")
    assert sid_of(again) == sid


def test_discovery_advertises_back_channel_logout_with_sessions(op):
    meta = requests.get(f"{op.url}/.well-known/openid-configuration", timeout=10).json()
    assert meta["backchannel_logout_supported"] is True
    assert meta["backchannel_logout_session_supported"] is True
    assert "sid" in meta["claims_supported"]


# --- Who is told: the clients of the ended session, once each (§2.5, §2.7) ----------------------------

def rp_logout(op, method: str, **params) -> requests.Response:
    if method == "GET":
        return op.browser.get(f"{op.url}/logout", params=params, allow_redirects=False, timeout=10)
    return op.browser.post(f"{op.url}/logout", data=params, allow_redirects=False, timeout=10)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_2_5_rp_initiated_logout_tells_every_client_of_the_session_and_no_other(op, receiver, sessions3, method):
    s1, s2, s3 = sessions3["s1"], sessions3["s2"], sessions3["s3"]
    r = rp_logout(op, method, id_token_hint=s1["a"]["id_token"], post_logout_redirect_uri=LOGGED_OUT, state="x")
    assert r.status_code in (302, 303) and r.headers["Location"] == f"{LOGGED_OUT}?state=x"
    settle()
    assert_told(receiver, "a", s1["a"])      # not for her other session at a
    assert_told(receiver, "b", s1["b"])
    assert_told(receiver, "c")               # her other session, and Paul's: nobody told
    # §2.7: the ended session's refresh tokens are revoked, the other sessions' are not.
    a, b, c = (sessions3["clients"][k] for k in "abc")
    assert_oauth_error(op.refresh(*a, s1["a"]["refresh_token"]), "invalid_grant")
    assert_oauth_error(op.refresh(*b, s1["b"]["refresh_token"]), "invalid_grant")
    assert op.refresh(*a, s2["a"]["refresh_token"]).status_code == 200
    assert op.refresh(*c, s2["c"]["refresh_token"]).status_code == 200
    assert op.refresh(*c, s3["c"]["refresh_token"]).status_code == 200


def test_logout_confirmed_on_the_providers_page_tells_the_clients_too(op, receiver, sessions3):
    a = sessions3["clients"]["a"][0]
    page = rp_logout(op, "GET", client_id=a.client_id)
    assert 'name="csrf_token"' in page.text
    settle()
    assert receiver.requests == [], "showing the confirmation page ends nothing"
    done = op.browser.post(f"{op.url}/logout", data={"csrf_token": csrf_token(page.text), "client_id": a.client_id},
                           allow_redirects=False, timeout=10)
    assert done.status_code == 303  # Post/Redirect/Get (issue 11): the page that says it is done
    done = op.browser.get(op.absolute(done.headers["Location"]), timeout=10)
    assert done.status_code == 200 and "Vous êtes déconnecté" in done.text
    settle()
    assert_told(receiver, "a", sessions3["s1"]["a"])
    assert_told(receiver, "b", sessions3["s1"]["b"])
    assert_told(receiver, "c")


def test_a_second_logout_of_an_ended_session_tells_nobody_again(op, receiver, sessions3):
    hint = sessions3["s1"]["a"]["id_token"]
    rp_logout(op, "GET", id_token_hint=hint, post_logout_redirect_uri=LOGGED_OUT)
    settle()
    rp_logout(op, "GET", id_token_hint=hint, post_logout_redirect_uri=LOGGED_OUT)
    settle()
    assert len(receiver.got("a")) == 1 and len(receiver.got("b")) == 1


def test_a_client_without_back_channel_uri_is_not_told_and_others_are(op, receiver, partner, make_client, make_user):
    a = partner("a")
    plain = make_client()
    jeanne = make_user()
    tokens, _ = op.tokens(*a, jeanne)
    op.tokens(*plain, jeanne)
    rp_logout(op, "GET", id_token_hint=tokens["id_token"])
    settle()
    assert_told(receiver, "a", tokens)
    assert len(receiver.requests) == 1


def test_2_4_logout_token_signed_es256_for_a_client_registered_with_es256(op, receiver, partner, make_user):
    a = partner("a", alg="ES256")
    tokens, _ = op.tokens(*a, make_user())
    rp_logout(op, "GET", id_token_hint=tokens["id_token"])
    settle()
    [got] = receiver.got("a")
    assert jwt_parts(got["token"])[0]["alg"] == "ES256"


def test_administrator_ends_the_persons_sessions_with_idp_users_logout(app, op, receiver, sessions3):
    """Every session of the person (two browsers): each client of each one is told once per session;
    Paul is not."""
    jeanne, s1, s2, s3 = sessions3["jeanne"], sessions3["s1"], sessions3["s2"], sessions3["s3"]
    result = app.test_cli_runner().invoke(args=["users", "logout", jeanne.nir])
    assert result.exit_code == 0, result.output
    assert "Ended 2 session(s); 4 logout notice(s)" in result.output
    assert_told(receiver, "a", s1["a"], s2["a"])
    assert_told(receiver, "b", s1["b"])
    assert_told(receiver, "c", s2["c"])
    assert all(s.ended_at for s in fresh(select(BrowserSession).where(BrowserSession.user_id == jeanne.id)))
    a, c = sessions3["clients"]["a"], sessions3["clients"]["c"]
    assert_oauth_error(op.refresh(*a, s2["a"]["refresh_token"]), "invalid_grant")
    assert op.refresh(*c, s3["c"]["refresh_token"]).status_code == 200
    # The sessions are over: single sign-on asks for a login again.
    params, _ = auth_params(a[0], prompt="none")
    assert query(op.authorize(params).headers["Location"])["error"] == "login_required"


def test_idp_users_logout_of_an_unknown_or_invalid_nir(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["users", "logout", "123"]).exit_code != 0
    unknown = runner.invoke(args=["users", "logout", "185057800608491"])
    assert unknown.exit_code != 0 and "No account" in unknown.output


def test_seed_004_step_6_a_password_reset_tells_every_client_of_every_session(op, receiver, sessions3,
                                                                            new_browser, mailbox):
    jeanne, s1, s2 = sessions3["jeanne"], sessions3["s1"], sessions3["s2"]
    recovery = Recovery(op.url, new_browser(), mailbox)
    done = recovery.set_password(recovery.request_link(jeanne))
    assert done.status_code == 200, done.text[:300]
    settle()
    assert_told(receiver, "a", s1["a"], s2["a"])
    assert_told(receiver, "b", s1["b"])
    assert_told(receiver, "c", s2["c"])      # not for Paul's session


# --- Delivery: never in the person's way, retried, bounded (settings) ---------------------------------

def backchannel_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "idp.oidc.backchannel" and r.levelno == logging.WARNING]


def assert_no_token_in(records, *tokens: str) -> None:
    for record in records:
        text = record.getMessage()
        assert "logout_token" not in text and not any(t["id_token"] in text for t in tokens)
        assert "eyJ" not in text, text


def test_a_slow_receiver_that_then_answers_500_never_holds_the_page_and_gets_its_retries(op, receiver, partner,
                                                                                      make_user, caplog):
    caplog.set_level(logging.WARNING, logger="idp.oidc.backchannel")
    a = partner("a")
    tokens, _ = op.tokens(*a, make_user())
    receiver.hold, receiver.status = threading.Event(), 500
    r = rp_logout(op, "GET", id_token_hint=tokens["id_token"], post_logout_redirect_uri=LOGGED_OUT)
    # The page has answered while the relying party holds the first attempt, unanswered: no
    # attempt could have failed yet, so none was retried (a delivery made in the request would
    # have waited for three attempts to time out).
    assert r.status_code == 302 and r.headers["Location"] == LOGGED_OUT
    assert len(receiver.requests) <= 1, "the page waited for the delivery"
    assert receiver.arrived.wait(10), "the first attempt reaches the relying party, after the page"
    receiver.hold.set()
    settle()
    attempts = receiver.got("a")
    assert len(attempts) == 1 + RETRIES, "retried, then given up"
    assert len({a["claims"]["jti"] for a in attempts}) == 1, "the same token each time"
    gaps = [later["at"] - earlier["at"] for earlier, later in zip(attempts, attempts[1:])]
    assert all(gap >= BACKOFF * 0.9 for gap in gaps), gaps
    time.sleep(BACKOFF * 4)
    assert len(receiver.got("a")) == 1 + RETRIES, "no attempt after the last one"
    warnings = backchannel_warnings(caplog)
    assert len(warnings) == 1 + RETRIES, [w.getMessage() for w in warnings]
    assert all("HTTP 500" in w.getMessage() for w in warnings)
    assert "given up" in warnings[-1].getMessage()
    assert_no_token_in(warnings, tokens)


def test_a_receiver_that_does_not_answer_in_time_is_retried(app, op, receiver, partner, make_user, caplog):
    caplog.set_level(logging.WARNING, logger="idp.oidc.backchannel")
    app.config["IDP_BACKCHANNEL_LOGOUT_TIMEOUT"] = 0.5
    a = partner("a")
    tokens, _ = op.tokens(*a, make_user())
    receiver.hold = threading.Event()            # never answers: each attempt times out
    r = rp_logout(op, "GET", id_token_hint=tokens["id_token"])
    assert r.status_code == 200 and "Vous êtes déconnecté" in r.text
    settle()
    assert len(receiver.got("a")) == 1 + RETRIES
    warnings = backchannel_warnings(caplog)
    assert len(warnings) == 1 + RETRIES and all("Timeout" in w.getMessage() for w in warnings)


def failures_counted(outcome: str) -> float:
    """idp_backchannel_logout_failures_total of this process (the live server runs in it)."""
    return REGISTRY.get_sample_value("idp_backchannel_logout_failures_total", {"outcome": outcome}) or 0.0


def test_a_receiver_that_is_down_costs_the_person_nothing(op, receiver, partner, make_user, caplog):
    caplog.set_level(logging.WARNING, logger="idp.oidc.backchannel")
    down = f"http://127.0.0.1:{free_port()}/backchannel?secret-du-partenaire=1"
    a = partner("a", uri=down)
    tokens, _ = op.tokens(*a, make_user())
    failures_before = {o: failures_counted(o) for o in ("retry", "given_up")}
    r = rp_logout(op, "POST", id_token_hint=tokens["id_token"], post_logout_redirect_uri=LOGGED_OUT, state="s")
    assert r.status_code == 303 and r.headers["Location"] == f"{LOGGED_OUT}?state=s"
    settle()
    # Issue 10: idp_backchannel_logout_failures_total, each failed attempt by what followed it.
    assert {o: failures_counted(o) - failures_before[o] for o in failures_before} == {"retry": RETRIES, "given_up": 1}
    warnings = backchannel_warnings(caplog)
    assert len(warnings) == 1 + RETRIES, [w.getMessage() for w in warnings]
    assert all("ConnectionError" in w.getMessage() and a[0].client_id in w.getMessage() for w in warnings)
    assert all("secret-du-partenaire" not in w.getMessage() for w in warnings), "only the host is logged"
    assert_no_token_in(warnings, tokens)


def test_a_4xx_answer_is_final_and_a_204_is_success(op, receiver, partner, make_user, caplog):
    caplog.set_level(logging.WARNING, logger="idp.oidc.backchannel")
    a, b = partner("a"), partner("b")
    jeanne = make_user()
    tokens, _ = op.tokens(*a, jeanne)
    op.tokens(*b, jeanne)
    receiver.status = 400
    rp_logout(op, "GET", id_token_hint=tokens["id_token"])
    settle()
    assert len(receiver.got("a")) == 1 and len(receiver.got("b")) == 1
    assert len(backchannel_warnings(caplog)) == 2 and all("HTTP 400" in w.getMessage() and "given up" in
                                                          w.getMessage() for w in backchannel_warnings(caplog))
    caplog.clear()
    receiver.status = 204
    tokens, _ = op.tokens(*a, jeanne)
    rp_logout(op, "GET", id_token_hint=tokens["id_token"])
    settle()
    assert len(receiver.got("a")) == 2 and backchannel_warnings(caplog) == []


# --- Registration: idp clients add|update --backchannel-logout-uri ------------------------------------

def test_clients_add_and_update_register_the_back_channel_logout_uri(app):
    runner = app.test_cli_runner()
    added = runner.invoke(args=["clients", "add", "--name", "Partenaire", "--redirect-uri", "https://rp.exemple.fr/cb",
                                "--backchannel-logout-uri", "https://rp.exemple.fr/backchannel",
                                "--backchannel-logout-session-required", "--json"])
    assert added.exit_code == 0, added.output
    client_id = added.output[added.output.index("{"):].split('"client_id": "')[1].split('"')[0]
    client = db.session.scalar(select(Client).where(Client.client_id == client_id))
    assert client.backchannel_logout_uri == "https://rp.exemple.fr/backchannel"
    assert client.backchannel_logout_session_required is True
    assert client.client_metadata["backchannel_logout_uri"] == "https://rp.exemple.fr/backchannel"

    updated = runner.invoke(args=["clients", "update", client_id, "--backchannel-logout-uri",
                                  "http://127.0.0.1:9000/bc", "--no-backchannel-logout-session-required"])
    assert updated.exit_code == 0, updated.output
    db.session.expire_all()
    client = db.session.get(Client, client.id)
    assert (client.backchannel_logout_uri, client.backchannel_logout_session_required) == ("http://127.0.0.1:9000/bc",
                                                                                          False)
    removed = runner.invoke(args=["clients", "update", client_id, "--backchannel-logout-uri", ""])
    assert removed.exit_code == 0, removed.output
    db.session.expire_all()
    assert db.session.get(Client, client.id).backchannel_logout_uri is None


@pytest.mark.parametrize("uri", ["http://rp.exemple.fr/bc", "https://rp.exemple.fr/bc#frag", "ftp://rp.exemple.fr/",
                                 "https://user:pw@rp.exemple.fr/bc", "pas une url"])
def test_clients_refuse_a_back_channel_uri_that_is_not_https(app, uri):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["clients", "add", "--name", "P", "--redirect-uri", "https://rp.exemple.fr/cb",
                                 "--backchannel-logout-uri", uri])
    assert result.exit_code == 2 and "--backchannel-logout-uri" in result.output, result.output
    assert db.session.scalar(select(Client.id)) is None
    unknown = runner.invoke(args=["clients", "update", "inconnu", "--backchannel-logout-uri", "https://x.fr/bc"])
    assert unknown.exit_code == 1 and "No client" in unknown.output


# --- As served in production: idp serve, two worker processes ------------------------------------------

def wait_until(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_served_by_several_workers_each_worker_delivers_in_the_background(served, make_client, make_user, browser):
    """``idp serve`` (granian, 2 worker processes): the worker that ends the session delivers from its own
    threads; a partner answering 500 gets its retries, each a line of the application log without the token."""
    receiver = Receiver(served.url)
    try:
        receiver.statuses["b"] = 500
        (a, a_secret), (b, b_secret) = make_client(), make_client()
        for path, client in (("a", a), ("b", b)):
            client.backchannel_logout_uri = receiver.url(path)
            receiver.audience[path] = client.client_id
        db.session.commit()
        op = OP(served.url, browser)
        jeanne = make_user()
        tokens, _ = op.tokens(a, a_secret, jeanne)
        at_b, _ = op.tokens(b, b_secret, jeanne)
        r = op.browser.post(f"{served.url}/logout", data={"id_token_hint": tokens["id_token"]}, timeout=10)
        assert r.status_code == 200 and "Vous êtes déconnecté" in r.text
        assert wait_until(lambda: len(receiver.got("a")) == 1 and len(receiver.got("b")) == 1 + RETRIES)
        assert_told(receiver, "a", tokens)
        assert {(g["claims"]["sid"], g["claims"]["sub"]) for g in receiver.got("b")} == {(sid_of(at_b), sub_of(at_b))}

        def failures() -> list[str]:
            return [line for line in served.logs().splitlines() if "Back-channel logout to client" in line]

        assert wait_until(lambda: len(failures()) == 1 + RETRIES), served.logs()[-3000:]
        assert all(b.client_id in line and "HTTP 500" in line for line in failures())
        sent = [tokens["id_token"], at_b["id_token"], *(g["token"] for g in receiver.got("b"))]
        assert not any(t in served.logs() for t in sent)
    finally:
        receiver.close()


def test_parallel_logouts_of_one_session_on_several_workers_announce_it_once(make_served, make_client, make_user,
                                                                           browser):
    """The session's end is one conditional UPDATE … RETURNING: of twelve logouts racing on two worker
    processes, one ends it and announces it; each partner gets one token."""
    served = make_served(workers=2, threads=4)
    receiver = Receiver(served.url)
    try:
        (a, a_secret), (b, b_secret) = make_client(), make_client()
        for path, client in (("a", a), ("b", b)):
            client.backchannel_logout_uri = receiver.url(path)
            receiver.audience[path] = client.client_id
        db.session.commit()
        op = OP(served.url, browser)
        jeanne = make_user()
        tokens, _ = op.tokens(a, a_secret, jeanne)
        op.tokens(b, b_secret, jeanne)
        cookie = browser.cookies.get("idp_session")
        start = threading.Barrier(12)
        statuses: list[int] = []

        def logout() -> None:
            with requests.Session() as own:
                own.cookies.set("idp_session", cookie)
                start.wait(10)
                r = own.post(f"{served.url}/logout", data={"id_token_hint": tokens["id_token"]}, timeout=20)
                statuses.append(r.status_code)

        threads = [threading.Thread(target=logout) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert statuses == [200] * 12
        assert wait_until(lambda: len(receiver.requests) >= 2)
        time.sleep(1.0)  # a second announcement, if any, would have arrived by now
        assert len(receiver.got("a")) == 1 and len(receiver.got("b")) == 1
    finally:
        receiver.close()
