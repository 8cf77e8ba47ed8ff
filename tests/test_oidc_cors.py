"""CORS (Fetch standard §3.2) on the served provider: which origins may read which answers.

Allowed: the origins of the redirect URIs of public clients, and of confidential
clients registered with ``--cors``; on ``/token``, ``/userinfo`` and ``/revoke``.
Discovery, RFC 8414 metadata and the JWKS: any origin (``*``). Never on
``/introspect`` (server to server) nor on an HTML page. An origin that is not
allowed gets no CORS header at all. The browser's own enforcement is proved by
tests/browser/test_spa_oidc_client_ts.py; here every header is checked on the wire.
"""

from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import event

from idp.extensions import db
from idp.oidc.cors import origin_of

SPA = "http://127.0.0.1:8431"  # the origin of the public client's redirect URI
SERVER_RP = "https://rp.exemple.fr"  # a confidential client's origin (not opted in)
STRANGER = "https://evil.exemple.net"


def cors_headers(r) -> dict:
    return {k.lower(): v for k, v in r.headers.items() if k.lower().startswith("access-control-")}


@pytest.fixture
def spa(make_client):
    """A public client (a single-page application) whose pages are on ``SPA``."""
    return make_client(redirect_uris=(f"{SPA}/callback.html",), public=True)[0]


@pytest.fixture
def server_rp(make_client):
    return make_client(redirect_uris=(f"{SERVER_RP}/callback",))


def preflight(url: str, origin: str, method: str = "POST", headers: str = "content-type") -> requests.Response:
    return requests.options(url, headers={
        "Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers,
    }, timeout=10)


# --- Origins ---------------------------------------------------------------------------------

@pytest.mark.parametrize("uri, origin", [
    ("https://spa.exemple.fr/callback", "https://spa.exemple.fr"),
    ("https://SPA.Exemple.fr:443/cb?x=1", "https://spa.exemple.fr"),
    ("https://spa.exemple.fr:8443/cb", "https://spa.exemple.fr:8443"),
    ("http://127.0.0.1:8431/cb", "http://127.0.0.1:8431"),
    ("http://localhost/cb", "http://localhost"),
    ("http://[::1]:9000/cb", "http://[::1]:9000"),
    ("com.example.app:/cb", None),
])
def test_origin_is_serialised_as_browsers_send_it(uri, origin):
    """Fetch §3.1 / RFC 6454 §6.2: lower-case scheme and host, no default port, no path."""
    assert origin_of(uri) == origin


# --- Preflight and answers per endpoint --------------------------------------------------------

@pytest.mark.parametrize("path, methods", [("/token", "POST"), ("/userinfo", "GET, POST"), ("/revoke", "POST")])
def test_preflight_from_a_browser_client_origin(live_server, app, spa, path, methods):
    r = preflight(live_server.url + path, SPA, headers="authorization, content-type")
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == SPA
    assert r.headers["Access-Control-Allow-Methods"] == methods
    allowed = {h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    assert r.headers["Access-Control-Max-Age"] == str(app.config["IDP_CORS_MAX_AGE"])
    assert "Origin" in r.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in r.headers  # credentials travel in the request, never cookies
    assert r.content == b""


@pytest.mark.parametrize("path", ["/token", "/userinfo", "/revoke"])
def test_no_cors_header_for_an_unregistered_origin(live_server, spa, server_rp, path):
    for origin in (STRANGER, SERVER_RP, "null", SPA + ":1", SPA.replace("http:", "https:"), SPA + "/"):
        r = preflight(live_server.url + path, origin)
        assert cors_headers(r) == {}, (origin, r.headers)
        r = requests.post(live_server.url + path, data={"grant_type": "authorization_code", "code": "x",
                                                        "token": "x", "client_id": spa.client_id},
                          headers={"Origin": origin}, timeout=10)
        assert r.status_code < 500
        assert cors_headers(r) == {}, (origin, r.headers)
        assert "Origin" in r.headers["Vary"]


def test_token_answers_name_the_origin_errors_included(live_server, op, spa, make_user):
    """A browser client must read the error too (RFC 6749 §5.2), and the challenge of a 401."""
    r = requests.post(f"{live_server.url}/token", data={"grant_type": "authorization_code", "code": "nope",
                                                        "redirect_uri": spa.redirect_uris[0], "code_verifier": "x" * 43,
                                                        "client_id": spa.client_id}, headers={"Origin": SPA}, timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert r.headers["Access-Control-Allow-Origin"] == SPA
    assert "WWW-Authenticate" in r.headers["Access-Control-Expose-Headers"]

    # The whole exchange as a browser client makes it: code, refresh, userinfo, revoke; each readable.
    user = make_user()
    login = op.login(spa, user, nonce=None)
    r = op.post("/token", spa, None, data={"grant_type": "authorization_code", "code": login.code,
                                           "redirect_uri": login.params["redirect_uri"],
                                           "code_verifier": login.verifier}, headers={"Origin": SPA})
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == SPA
    tokens = r.json()
    r = op.post("/token", spa, None, data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                headers={"Origin": SPA})
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == SPA
    tokens = r.json()
    r = requests.get(f"{live_server.url}/userinfo", headers={"Origin": SPA,
                                                             "Authorization": f"Bearer {tokens['access_token']}"},
                     timeout=10)
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == SPA
    r = op.post("/revoke", spa, None, data={"token": tokens["refresh_token"]}, headers={"Origin": SPA})
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == SPA


def test_userinfo_error_exposes_the_challenge(live_server, spa):
    """RFC 6750 §3: the page must read ``WWW-Authenticate`` to know why it was refused."""
    r = requests.get(f"{live_server.url}/userinfo", headers={"Origin": SPA, "Authorization": "Bearer nope"},
                     timeout=10)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.headers["Access-Control-Allow-Origin"] == SPA
    assert r.headers["Access-Control-Expose-Headers"] == "WWW-Authenticate"


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server",
                                  "/jwks.json"])
def test_public_documents_are_readable_by_any_origin(live_server, spa, path):
    for origin in (SPA, STRANGER):
        r = requests.get(live_server.url + path, headers={"Origin": origin}, timeout=10)
        assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "*"
        r = preflight(live_server.url + path, origin, method="GET", headers="x-requested-with")
        assert r.status_code == 204
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert r.headers["Access-Control-Allow-Methods"] == "GET"


def test_introspection_is_never_cors(live_server, op, spa, make_client, make_user):
    """RFC 7662: a resource server's call, never a page's; even a client opted in gets no header there."""
    client, secret = make_client(redirect_uris=(f"{SERVER_RP}/callback",))
    client.cors = True
    db.session.commit()
    for origin in (SPA, SERVER_RP):
        assert cors_headers(preflight(f"{live_server.url}/introspect", origin)) == {}
        r = op.post("/introspect", client, secret, data={"token": "nope"}, headers={"Origin": origin})
        assert r.status_code == 200 and r.json() == {"active": False}
        assert cors_headers(r) == {}


@pytest.mark.parametrize("path", ["/authorize", "/connexion", "/connexion/aide", "/logout", "/mot-de-passe-oublie"])
def test_html_pages_are_never_cors(live_server, spa, path):
    r = requests.get(live_server.url + path, headers={"Origin": SPA}, allow_redirects=False, timeout=10)
    assert cors_headers(r) == {}, r.headers
    assert cors_headers(preflight(live_server.url + path, SPA, method="GET")) == {}


# --- Who is allowed, and when a change is seen --------------------------------------------------

@pytest.fixture
def settings():
    return {"CLIENT_CACHE_SECONDS": 1}


def test_confidential_client_opts_in_and_the_change_is_seen_within_the_cache_period(live_server, app, server_rp):
    """``--cors`` on a confidential client: its origin is allowed within IDP_CLIENT_CACHE_SECONDS on every worker."""
    client, _ = server_rp
    assert cors_headers(preflight(f"{live_server.url}/token", SERVER_RP)) == {}  # read and cached: not allowed
    client.cors = True
    db.session.commit()
    deadline = time.monotonic() + app.config["IDP_CLIENT_CACHE_SECONDS"] + 2
    while cors_headers(preflight(f"{live_server.url}/token", SERVER_RP)) == {}:
        assert time.monotonic() < deadline, "the opt-in was not seen within the client cache period"
        time.sleep(0.1)
    assert preflight(f"{live_server.url}/token", SERVER_RP).headers["Access-Control-Allow-Origin"] == SERVER_RP

    # Removed again (another redirect URI): its old origin is refused within the same delay.
    client.redirect_uris = ["https://autre.exemple.fr/callback"]
    db.session.commit()
    deadline = time.monotonic() + app.config["IDP_CLIENT_CACHE_SECONDS"] + 2
    while cors_headers(preflight(f"{live_server.url}/token", SERVER_RP)) != {}:
        assert time.monotonic() < deadline, "the removed origin was still allowed after the cache period"
        time.sleep(0.1)
    assert preflight(f"{live_server.url}/token", "https://autre.exemple.fr").status_code == 204


def test_origins_cost_no_statement_per_request(web, app, spa):
    """The set of origins is read once per cache period, not per request: the statement budget holds."""
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    web.options("/token", headers={"Origin": SPA, "Access-Control-Request-Method": "POST"})  # fills the cache
    event.listen(db.engine, "before_cursor_execute", count)
    try:
        for _ in range(5):
            r = web.options("/token", headers={"Origin": SPA, "Access-Control-Request-Method": "POST"})
            assert r.status_code == 204 and r.headers["Access-Control-Allow-Origin"] == SPA
            r = web.options("/userinfo", headers={"Origin": STRANGER, "Access-Control-Request-Method": "GET"})
            assert "Access-Control-Allow-Origin" not in r.headers
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert statements == []


def test_every_worker_sees_a_client_change_within_the_cache_period(make_served, app, make_client):
    """``idp serve`` with 3 workers: each keeps its own copy of the origins, and drops it after the cache period."""
    client, _ = make_client(redirect_uris=(f"{SPA}/callback.html",), public=True)
    served = make_served(workers=3, threads=2)
    url = f"{served.url}/token"

    def allowed_count(origin: str, n: int = 24) -> int:
        return sum("Access-Control-Allow-Origin" in preflight(url, origin).headers for _ in range(n))

    assert allowed_count(SPA) == 24  # every worker read the origins: the client is there
    client.redirect_uris = ["http://127.0.0.1:8432/callback.html"]
    db.session.commit()
    time.sleep(app.config["IDP_CLIENT_CACHE_SECONDS"] + 0.5)
    assert allowed_count(SPA) == 0  # no worker still allows the old origin
    assert allowed_count("http://127.0.0.1:8432") == 24
