"""Playwright fixtures: one Chromium per session, a fresh context (a new browser profile) per test.

Chromium is Debian's (``/usr/bin/chromium``, or ``IDP_CHROMIUM``); Playwright never
downloads one. Every context records the requests of its pages, JavaScript
errors and console errors (a CSP violation is one); after the test, all of them
must be absent except requests to 127.0.0.1: the pages load nothing from outside.

The relying party (``rp``) is registered with the ``redirect_uri`` of a small HTTP
server on 127.0.0.1 that answers a plain page: the browser really lands there and
the test reads the code from the URL. (Playwright's routes cannot stand in for it:
they do not see the hops of a redirect, and the browser would show its error page
for a port where nobody listens.)

``IDP_SCREENSHOTS=dir`` saves PNG screenshots of the pages (``shoot`` fixture).
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

CALLBACK_PAGE = ("<!doctype html><html lang='fr'><head><meta charset='utf-8'><title>Site partenaire</title>"
                 "<link rel='icon' href='data:,'></head><body><h1>Retour sur le site partenaire</h1></body></html>")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 667}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
HERE = Path(__file__).parent


def pytest_configure(config):
    config.addinivalue_line("markers",
                            "browser: drives the pages in headless Chromium (deselect with -m 'not browser')")


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)


def _chromium_path() -> str | None:
    candidate = os.environ.get("IDP_CHROMIUM") or "/usr/bin/chromium"
    return candidate if os.path.exists(candidate) else shutil.which("chromium")


@pytest.fixture(scope="session")
def playwright():
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def chromium(playwright):
    """One headless Chromium for the whole run."""
    path = _chromium_path()
    if path is None:
        pytest.fail("no Chromium: `apt-get install chromium` (make test does it as root), or set IDP_CHROMIUM")
    browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


def outside(urls) -> list[str]:
    """The URLs not on 127.0.0.1 (the provider, the relying party's test server)."""
    return [u for u in urls if urlsplit(u).scheme != "http" or urlsplit(u).hostname != "127.0.0.1"]


class Watch:
    """What the pages of a context did that they should not: outside requests, errors."""

    def __init__(self, requests: list[str]):
        self.requests = requests
        self.errors: list[str] = []
        self._pages_in_error: set[str] = set()

    def attach(self, context):
        context.on("request", lambda request: self.requests.append(request.url))
        context.on("response", self._response)
        context.on("weberror", lambda error: self.errors.append(f"JavaScript: {error.error}"))
        context.on("console", self._console)

    def _response(self, response):
        # The case pages are answered with 4xx statuses on purpose; Chromium logs those too.
        if response.request.resource_type == "document" and response.status >= 400:
            self._pages_in_error.add(response.url)

    def _console(self, message):
        url = message.location.get("url")
        if message.type != "error":
            return
        if message.text.startswith("Failed to load resource") and url in self._pages_in_error:
            return
        self.errors.append(f"console: {message.text} ({url})")


@pytest.fixture
def new_context(chromium):
    """Open more contexts (another browser on another computer); each checked after the test."""
    opened = []
    requests: list[str] = []

    def _new(viewport=DESKTOP, **options):
        context = chromium.new_context(viewport=viewport, locale="fr-FR", timezone_id="Europe/Paris", **options)
        context.set_default_timeout(10_000)
        watch = Watch(requests)
        watch.attach(context)
        opened.append((context, watch))
        return context

    _new.requests = requests  # every URL requested by every context of the test
    yield _new
    problems = []
    for context, watch in opened:
        context.close()
        problems += watch.errors
    problems += [f"request outside 127.0.0.1: {u}" for u in outside(requests)]
    assert not problems, "\n".join(problems)


class _PartnerSite(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = CALLBACK_PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def partner_site():
    """A relying party's web server on 127.0.0.1: every GET gets a plain page."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PartnerSite)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def rp(live_server, make_client, partner_site):
    """A relying party (Authlib's client) registered with a callback on ``partner_site``."""
    from oidc_rp import RelyingParty

    client, secret = make_client(redirect_uris=(f"{partner_site}/callback",))
    return RelyingParty(live_server.url, client, secret)


@pytest.fixture
def network(new_context) -> list[str]:
    """Every URL the browser requested during the test, in order."""
    return new_context.requests


@pytest.fixture
def viewport():
    """The window size of ``context``; a test module may override or parametrize it."""
    return DESKTOP


@pytest.fixture
def context(new_context, viewport):
    return new_context(viewport=viewport)


@pytest.fixture
def page(context):
    return context.new_page()


def _safe(name: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", name.lower())


@pytest.fixture(scope="session")
def screenshots_dir() -> Path | None:
    folder = os.environ.get("IDP_SCREENSHOTS")
    if not folder:
        return None
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def shoot(screenshots_dir):
    """``shoot(page, "step0-password")``: a full-page PNG when IDP_SCREENSHOTS is set, else nothing.

    Screenshots in a phone-sized window get the suffix ``-phone``.
    """

    def _shoot(page, name: str) -> None:
        if screenshots_dir is None:
            return
        if page.viewport_size and page.viewport_size["width"] < 600:
            name += "-phone"
        page.screenshot(path=str(screenshots_dir / f"{_safe(name)}.png"), full_page=True, caret="hide",
                        animations="disabled")

    return _shoot


# Inputs without a visible label (RGAA 11.1): their id or name.
UNLABELLED_JS = """() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(el => el.type !== 'hidden')
  .filter(el => !Array.from(el.labels || []).some(l => l.textContent.trim() && l.getClientRects().length
                                                     && getComputedStyle(l).visibility !== 'hidden'))
  .map(el => el.id || el.name)"""


@pytest.fixture
def looks_right(shoot):
    """``looks_right(page, "case6-password-lock")``: checks every page should pass, and screenshots.

    A visible label for every input, one ``h1``, French; no horizontal scroll in
    the window, and then in a phone-sized one (375 × 667) when the window is wider:
    resizing is much cheaper than walking the journey again.
    """

    def _fits(page, name: str) -> None:
        width, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert width <= inner, f"{name}: horizontal scroll ({width} px in a {inner} px window)"

    def _check(page, name: str) -> None:
        unlabelled = page.evaluate(UNLABELLED_JS)
        assert not unlabelled, f"{name}: inputs without a visible label: {unlabelled}"
        assert page.locator("h1").count() == 1, f"{name}: not exactly one h1"
        assert page.locator("html").get_attribute("lang") == "fr"
        _fits(page, name)
        shoot(page, name)
        size = page.viewport_size
        if size and size["width"] > PHONE["width"]:
            page.set_viewport_size(PHONE)
            try:
                _fits(page, f"{name} (phone)")
                shoot(page, name)
            finally:
                page.set_viewport_size(size)

    return _check
