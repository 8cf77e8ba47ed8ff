"""Helpers for the login-journey tests: one person's browser going through ``/connexion``.

:class:`Journey` drives one login in one browser, page by page, over real HTTP
(``live_server``), so that each test says which page it expects and asserts on
it. The fixtures at the bottom are imported by the test modules.

The test thread reads and moves timestamps in the same database as the served
provider: :func:`fresh` forgets what this thread read before (the server wrote
meanwhile), :func:`move` commits at once (so that the server never waits on a
lock held by the test).
"""

from __future__ import annotations

import html as html_lib
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
import requests
from urllib.parse import urljoin
from sqlalchemy import select, update

from conftest import PASSWORD, STEP_RE, csrf_token
from idp.extensions import db
from idp.login import policy
from idp.models import Limit, LoginFlow, utcnow
from oidc_flows import auth_params, jwt_parts, query, without_query

PARIS = ZoneInfo("Europe/Paris")
DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre")

NO_FLOW = "Cette demande de connexion n'est plus valable"
CASE4_PASSWORD = ("Numéro de sécurité sociale ou mot de passe incorrect. "
                  "Vérifiez les informations saisies et réessayez.")
CASE4_CODE = "Le code de sécurité saisi est incorrect. Vérifiez-le dans le mail le plus récent et réessayez."
CODE_SUBJECT = "Votre code de sécurité pour vous connecter à votre compte ameli"

_CSRF_VALUE = re.compile(r'(name="csrf_token"[^>]*value=")[^"]+"')
_ALERT = re.compile(r'<div class="alert alert--error"[^>]*>(.*?)</div>', re.S)


# --- Reading pages ---------------------------------------------------------------------------

def page_text(markup: str) -> str:
    """What a person reads: no tags, entities decoded, whitespace collapsed."""
    markup = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", markup)
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def alert_text(markup: str) -> str:
    """The text of the red boxes (``alert--error``) of a page."""
    return " ".join(page_text(m) for m in _ALERT.findall(markup))


def without_secrets(markup: str, *values: str) -> str:
    """The page with its CSRF token and the given values (a NIR typed...) blanked, to compare two pages."""
    markup = _CSRF_VALUE.sub(r'\1-"', markup)
    for value in values:
        markup = markup.replace(value, "-")
    return markup


def step_of(response) -> str | None:
    """``data-step`` of a login page (password, code-request, code), None for any other page."""
    match = STEP_RE.search(response.text or "")
    return match.group(1) if match else None


def paris(dt: datetime) -> str:
    """A stored naive UTC datetime as the pages write it in Paris: ``mardi 24 novembre 2026 à 11 h 05``."""
    local = dt.replace(tzinfo=timezone.utc).astimezone(PARIS)
    day = "1er" if local.day == 1 else local.day  # French ordinal for the first of the month
    return (f"{DAYS[local.weekday()]} {day} {MONTHS[local.month - 1]} {local.year} "
            f"à {local.hour} h {local.minute:02d}")


def paris_hm(dt: datetime) -> str:
    """``11 h 05`` (the time the security-code mail gives)."""
    local = dt.replace(tzinfo=timezone.utc).astimezone(PARIS)
    return f"{local.hour} h {local.minute:02d}"


def set_cookie_headers(response: requests.Response, name: str) -> list[str]:
    """The raw ``Set-Cookie`` headers of ``response`` for cookie ``name``."""
    return [h for h in response.raw.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]


def cookie_attributes(header: str) -> tuple[str, dict[str, str]]:
    """``name=value; HttpOnly; Path=/`` → ``(value, {"httponly": "", "path": "/"})``."""
    first, *attrs = [part.strip() for part in header.split(";")]
    value = first.partition("=")[2]
    out = {}
    for attr in attrs:
        key, _, val = attr.partition("=")
        out[key.lower()] = val
    return value, out


# --- The database, seen from the test thread ------------------------------------------------------

def fresh(stmt):
    """The rows of ``stmt`` as committed now (what this thread read before is forgotten)."""
    db.session.rollback()
    return db.session.scalars(stmt).all()


def flows() -> list[LoginFlow]:
    return fresh(select(LoginFlow).order_by(LoginFlow.id))


def limit_row(kind: str, key: str) -> Limit | None:
    rows = fresh(select(Limit).where(Limit.kind == kind, Limit.key == key))
    return rows[0] if rows else None


def password_limit(nir_typed: str) -> Limit | None:
    return limit_row("password", policy.nir_key(nir_typed))


def code_limit(user_id: int) -> Limit | None:
    return limit_row("code", policy.user_key(user_id))


def quota_limit(user_id: int) -> Limit | None:
    return limit_row("code-quota", policy.user_key(user_id))


def move(stmt) -> None:
    """Run an UPDATE (moving a timestamp, changing an account) and commit it at once."""
    db.session.execute(stmt)
    db.session.commit()


def lock_until(kind: str, key: str, until: datetime) -> None:
    move(update(Limit).where(Limit.kind == kind, Limit.key == key).values(locked_until=until))


def expire_codes() -> None:
    """Every pending security code reaches its end of life now (case 2)."""
    move(update(LoginFlow).where(LoginFlow.code_hash.is_not(None)).values(code_expires_at=utcnow()))


def near(value: datetime, expected: datetime, seconds: int = 5) -> bool:
    return abs((value - expected).total_seconds()) <= seconds


OUTCOME = "X-Login-Outcome"


def outcome(r: requests.Response) -> int:
    """The status of the page a login form led to: named by its 303 (Post/Redirect/Get), else its own."""
    return getattr(r, "outcome", r.status_code)


def race(posts: list[tuple[requests.Session, str, dict]]) -> list[requests.Response]:
    """Send every ``(session, url, data)`` POST at the same instant; the responses in the same order.

    Each session has its own connection; a barrier releases the requests together. A 303 to
    the login page is followed by its GET, as a browser does; :func:`outcome` gives the status
    the POST's 303 named (per request, even when parallel forms of one login share its page).
    """
    barrier = threading.Barrier(len(posts))

    def send(item):
        session, url, data = item
        barrier.wait(timeout=30)
        r = session.post(url, data=data, allow_redirects=False, timeout=60)
        if r.status_code == 303 and OUTCOME in r.headers:
            named = int(r.headers[OUTCOME])
            r = session.get(urljoin(url, r.headers["Location"]), allow_redirects=False, timeout=60)
            r.outcome = named
        return r

    with ThreadPoolExecutor(max_workers=len(posts)) as pool:
        return list(pool.map(send, posts))


# --- One login in one browser ---------------------------------------------------------------------

class Journey:
    """One authorization request of ``client`` in ``browser``, and the login pages it leads to."""

    def __init__(self, url: str, browser, client, secret: str | None = None):
        self.url = url
        self.browser = browser
        self.client = client
        self.secret = secret
        self.page: requests.Response | None = None  # the last page with a form (for its CSRF token)
        self.params: dict = {}
        self.verifier = ""

    @property
    def step_url(self) -> str:
        return self.url + "/connexion"

    def start(self, **overrides) -> requests.Response:
        """``/authorize`` (which must lead to the login pages), then the first page."""
        self.params, self.verifier = auth_params(self.client, **overrides)
        r = self.browser.get(f"{self.url}/authorize", params=self.params, allow_redirects=False, timeout=10)
        assert r.status_code == 302 and r.headers["Location"].endswith("/connexion"), (r.status_code, r.text[:300])
        return self.get()

    def get(self) -> requests.Response:
        r = self.browser.get(self.step_url, allow_redirects=False, timeout=10)
        if r.status_code == 303 and r.headers["Location"].endswith("/connexion"):
            r = self.browser.get(self.step_url, allow_redirects=False, timeout=10)
        return self._keep(r)

    def post(self, data: dict | None = None, follow: bool = True, url: str | None = None) -> requests.Response:
        """Submit the current page's form with ``data``; follows the Post/Redirect/Get of the journey."""
        assert self.page is not None, "no page with a form yet"
        r = self.browser.post(url or self.step_url, data={"csrf_token": csrf_token(self.page.text), **(data or {})},
                              allow_redirects=False, timeout=10)
        if follow and r.status_code == 303 and r.headers["Location"].endswith("/connexion"):
            return self.get()
        return self._keep(r)

    def _keep(self, r: requests.Response) -> requests.Response:
        if 'name="csrf_token"' in (r.text or ""):
            self.page = r
        return r

    # --- the steps ----------------------------------------------------------------------------
    def password(self, user=None, password: str = PASSWORD, nir: str | None = None, **kw) -> requests.Response:
        return self.post({"nir": nir if nir is not None else user.nir, "password": password}, **kw)

    def request_code(self, **kw) -> requests.Response:
        """Step 1: « Recevoir un code de sécurité »."""
        return self.post({}, **kw)

    def enter_code(self, code: str, remember: bool = False, **kw) -> requests.Response:
        """Step 3: the code, and « J'utilise mon ordinateur personnel » when ``remember``."""
        data = {"code": code}
        if remember:
            data["remember"] = "y"
        return self.post(data, **kw)

    def resend(self) -> requests.Response:
        """Step 3: « Recevoir un nouveau code de sécurité »."""
        return self.post({"action": "resend"})

    def code(self, email: str) -> str:
        """The code of the newest mail to ``email`` (read from the SMTP server)."""
        return self.browser.security_code(email)

    def up_to_code_entry(self, user, password: str = PASSWORD, **overrides) -> requests.Response:
        """Start, password, « Recevoir un code »: the step 3 page, a code in the mailbox."""
        if overrides or not self.params:
            page = self.start(**overrides)
            assert step_of(page) == "password", page.text[:300]
        page = self.password(user, password)
        assert step_of(page) == "code-request", (page.status_code, page_text(page.text)[:300])
        page = self.request_code()
        assert step_of(page) == "code", (page.status_code, page_text(page.text)[:300])
        return page

    # --- the end ------------------------------------------------------------------------------
    def callback(self, r: requests.Response) -> dict:
        """The authorization response at the relying party: ``code``, ``state``, ``iss``.

        A 303 after a POST (the last login step's form, RFC 9700 §4.11), a 302 after a GET.
        """
        assert r.status_code == (303 if r.request.method == "POST" else 302), \
            (r.request.method, r.status_code, page_text(r.text)[:400])
        location = r.headers["Location"]
        assert without_query(location) == self.params["redirect_uri"], location
        got = query(location)
        assert got.get("code") and got["state"] == self.params["state"] and got["iss"] == self.url, got
        return got

    def id_token_claims(self, r: requests.Response) -> dict:
        """Exchange the code of the callback ``r`` and return the ID token's claims."""
        got = self.callback(r)
        token = requests.post(f"{self.url}/token", auth=(self.client.client_id, self.secret), timeout=10, data={
            "grant_type": "authorization_code", "code": got["code"], "redirect_uri": self.params["redirect_uri"],
            "code_verifier": self.verifier})
        assert token.status_code == 200, token.text
        claims = jwt_parts(token.json()["id_token"])[1]
        assert claims["nonce"] == self.params["nonce"]
        return claims


# --- Fixtures (imported by the test modules) ------------------------------------------------------

@pytest.fixture
def new_journey(live_server, new_browser, rp):
    """A login in a browser: a new one (another computer) unless one is given."""
    def _new(browser=None) -> Journey:
        return Journey(live_server.url, browser if browser is not None else new_browser(), rp[0], rp[1])

    return _new


@pytest.fixture
def journey(new_journey, browser) -> Journey:
    """A login in the test's ``browser``."""
    return new_journey(browser)

