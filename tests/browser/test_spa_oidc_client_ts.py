"""A browser single-page application as a public client: ``oidc-client-ts`` (npm), in Chromium, with CORS on.

The SPA is a static page on its own origin (a small HTTP server on another port of
127.0.0.1: another origin than the provider, so the browser enforces CORS on every
``fetch``), loading the library's browser bundle (``dist/browser/oidc-client-ts.min.js``,
installed by ``make test`` or by :func:`oidc_client_ts` into the git-ignored
``tests/browser/spa/node_modules``). With the library's default settings (code flow,
PKCE S256, **no nonce**):

* login through the real French pages (password, then the code read from the test
  SMTP server), token request from the page, userinfo (``loadUserInfo`` and a plain
  ``fetch`` with the bearer token: a preflighted request);
* refresh with the public client's rotating refresh token (``signinSilent``);
* logout (``signoutRedirect`` with ``revokeTokensOnSignout``: ``/revoke`` from the
  page, then RP-initiated logout) and the provider's session is gone.

And the same page served from an origin no client registered: the browser blocks
what the page reads from ``/token`` and ``/userinfo`` (``fetch`` fails), and the
provider sent no CORS header there.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from playwright.sync_api import expect

from .conftest import CHROMIUM_ARGS  # noqa: F401  (the same Chromium, see conftest)
from .person import Person

SPA_DIR = Path(__file__).parent / "spa"
BUNDLE = SPA_DIR / "node_modules" / "oidc-client-ts" / "dist" / "browser" / "oidc-client-ts.min.js"

PAGE = """<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Application partenaire</title>
<link rel="icon" href="data:,"><script src="/oidc-client-ts.min.js"></script>
<script>window.mgr = new oidc.UserManager(%s);</script></head>
<body><h1>Application partenaire</h1></body></html>"""


@pytest.fixture(scope="session")
def oidc_client_ts() -> bytes:
    """The library's browser bundle; installed from npm (package-lock.json) when missing."""
    if not BUNDLE.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed for the SPA test (apt-get install npm; make test installs the package)")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=SPA_DIR, check=True, timeout=300)
    return BUNDLE.read_bytes()


class SpaServer:
    """A static web server for the SPA: the bundle, and the page (with its settings) at every other path."""

    def __init__(self, bundle: bytes):
        self.settings: dict = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path == "/oidc-client-ts.min.js":
                    body, kind = bundle, "application/javascript"
                else:
                    body, kind = (PAGE % json.dumps(outer.settings)).encode(), "text/html; charset=utf-8"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def spa_server(oidc_client_ts):
    server = SpaServer(oidc_client_ts)
    yield server
    server.stop()


@pytest.fixture
def stranger_server(oidc_client_ts):
    """The same page on an origin that no client registered."""
    server = SpaServer(oidc_client_ts)
    yield server
    server.stop()


@pytest.fixture
def spa_client(make_client, spa_server, live_server):
    """The SPA registered as a public client, and the library's settings (defaults, except the addresses)."""
    client, _ = make_client(public=True, redirect_uris=(f"{spa_server.origin}/callback.html",),
                            post_logout_redirect_uris=(f"{spa_server.origin}/logged-out.html",),
                            scope="openid profile email")
    spa_server.settings = {
        "authority": live_server.url,
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uris[0],
        "post_logout_redirect_uri": client.post_logout_redirect_uris[0],
        "scope": "openid profile email",
        "loadUserInfo": True,
        "revokeTokensOnSignout": True,
    }
    return client


USER_JS = """u => ({access_token: u.access_token, refresh_token: u.refresh_token, id_token: u.id_token,
                   profile: u.profile, scope: u.scope})"""


def log_in_from_the_page(page, mailbox, user, origin: str) -> str:
    """``signinRedirect`` from the page, then the French login pages; the callback URL the browser lands on."""
    page.evaluate("() => { mgr.signinRedirect(); }")  # navigates away once it has the metadata
    jeanne = Person(page, mailbox, user)
    jeanne.give_password()
    jeanne.enter_code(jeanne.request_code())
    page.wait_for_url(re.compile("^" + re.escape(origin) + r"/callback\.html\?"))
    return page.url


def test_spa_public_client_login_userinfo_refresh_logout(live_server, spa_client, spa_server, make_user, page,
                                                         mailbox, network):
    user = make_user()
    page.goto(f"{spa_server.origin}/index.html")
    callback = log_in_from_the_page(page, mailbox, user, spa_server.origin)

    # The library's default request: code flow, PKCE S256, no nonce (OIDC Core §3.1.2.1 allows it with PKCE).
    authorize = next(u for u in network if u.startswith(f"{live_server.url}/authorize?"))
    params = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    assert params["code_challenge_method"] == "S256" and params["code_challenge"]
    assert "nonce" not in params
    assert parse_qs(urlsplit(callback).query)["iss"] == [live_server.url]

    # Token request and userinfo from the page (CORS: the provider names this origin).
    signed_in = page.evaluate(f"async () => ({USER_JS})(await mgr.signinRedirectCallback())")
    assert signed_in["access_token"] and signed_in["refresh_token"] and signed_in["id_token"]
    assert signed_in["profile"]["email"] == user.email  # merged from userinfo by the library
    assert signed_in["profile"]["iss"] == live_server.url and "nonce" not in signed_in["profile"]

    status, info = page.evaluate("""async ([url, token]) => {
        const r = await fetch(url, {headers: {Authorization: 'Bearer ' + token}});
        return [r.status, await r.json()]; }""", [f"{live_server.url}/userinfo", signed_in["access_token"]])
    assert status == 200 and info["sub"] == signed_in["profile"]["sub"] and info["given_name"] == "Jeanne"

    # Refresh: the public client's refresh token, rotated.
    refreshed = page.evaluate(f"async () => ({USER_JS})(await mgr.signinSilent())")
    assert refreshed["access_token"] != signed_in["access_token"]
    assert refreshed["refresh_token"] != signed_in["refresh_token"]
    assert refreshed["profile"]["sub"] == signed_in["profile"]["sub"]
    old = requests.post(f"{live_server.url}/token", data={"grant_type": "refresh_token", "client_id": spa_client.client_id,
                                                         "refresh_token": signed_in["refresh_token"]}, timeout=10)
    assert old.status_code == 400  # used once: a reuse is refused (and revokes the grant)

    # A new login, since the reuse above revoked that grant on purpose (RFC 9700 §4.14.2).
    page.goto(f"{spa_server.origin}/index.html")
    page.evaluate("() => { mgr.signinRedirect(); }")
    page.wait_for_url(re.compile("^" + re.escape(spa_server.origin) + r"/callback\.html\?"))  # single sign-on
    signed_in = page.evaluate(f"async () => ({USER_JS})(await mgr.signinRedirectCallback())")
    refreshed = page.evaluate(f"async () => ({USER_JS})(await mgr.signinSilent())")
    assert refreshed["refresh_token"] != signed_in["refresh_token"]

    # Logout: /revoke from the page (the library stops if it cannot read the answer), then RP-initiated logout.
    page.evaluate("() => { mgr.signoutRedirect(); }")
    page.wait_for_url(re.compile("^" + re.escape(spa_server.origin) + r"/logged-out\.html"))
    assert any(u == f"{live_server.url}/revoke" for u in network)
    r = requests.post(f"{live_server.url}/token", data={"grant_type": "refresh_token", "client_id": spa_client.client_id,
                                                       "refresh_token": refreshed["refresh_token"]}, timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"  # revoked by the page
    r = requests.get(f"{live_server.url}/userinfo", headers={"Authorization": f"Bearer {refreshed['access_token']}"},
                     timeout=10)
    assert r.status_code == 401
    # The provider's session ended: the next login asks for the password again.
    page.evaluate("() => { mgr.signinRedirect(); }")
    Person(page, mailbox, user).step("password")


def test_spa_on_an_unregistered_origin_is_blocked_by_the_browser(live_server, spa_client, spa_server,
                                                                  stranger_server, make_user, chromium, mailbox):
    """The same page and library on an origin that no client registered: the browser keeps the answers from it."""
    stranger_server.settings = spa_server.settings  # same client, its redirect URI on the registered origin
    user = make_user()
    # Its own context, unwatched: the console errors of the blocked fetches are the point of this test.
    context = chromium.new_context(locale="fr-FR")
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        page.goto(f"{stranger_server.origin}/index.html")
        # Discovery is public (``*``): the library starts the login from this origin too.
        callback = log_in_from_the_page(page, mailbox, user, spa_server.origin)

        # Back on the stranger's page (its state is there): the token request's answer cannot be read.
        page.goto(f"{stranger_server.origin}/index.html")
        outcome = page.evaluate("""async (url) => {
            try { await mgr.signinRedirectCallback(url); return 'signed in'; }
            catch (e) { return String(e); } }""", callback)
        assert outcome != "signed in"
        assert re.search(r"fetch|network", outcome, re.I), outcome

        blocked = page.evaluate("""async (url) => {
            try { await fetch(url, {headers: {Authorization: 'Bearer x'}}); return 'read'; }
            catch (e) { return e.name; } }""", f"{live_server.url}/userinfo")
        assert blocked == "TypeError"
        readable = page.evaluate("""async (url) => (await fetch(url)).status""",
                                 f"{live_server.url}/.well-known/openid-configuration")
        assert readable == 200
    finally:
        context.close()

    # What the provider answered that origin: no CORS header at all.
    for method, path in (("OPTIONS", "/token"), ("POST", "/token"), ("OPTIONS", "/userinfo"), ("GET", "/userinfo")):
        r = requests.request(method, f"{live_server.url}{path}", timeout=10, headers={
            "Origin": stranger_server.origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization"})
        assert not [h for h in r.headers if h.lower().startswith("access-control-")], (method, path, r.headers)
    r = requests.options(f"{live_server.url}/token", timeout=10, headers={
        "Origin": spa_server.origin, "Access-Control-Request-Method": "POST"})
    assert r.headers["Access-Control-Allow-Origin"] == spa_server.origin
