"""The demo: ``idp demo``, the demo relying party over real HTTP, and the demo mailbox."""

from __future__ import annotations

import json
import os
import re
import stat
from html import unescape
from urllib.parse import parse_qs, urljoin, urlparse

import pytest
from sqlalchemy import func, select

from idp import crypto
from idp.demo.accounts import DEMO_ACCOUNTS, DEMO_PASSWORD
from idp.extensions import db
from idp.mail import send_mail
from idp.models import Client, User

JEANNE = DEMO_ACCOUNTS[0]


@pytest.fixture
def settings(tmp_path):
    return {
        "DEMO": True,
        "MAIL_URL": "console://",  # the demo mailbox shows what the console transport keeps
        "DEMO_CLIENT_FILE": str(tmp_path / "demo-client.json"),
        "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
    }


def run_demo(app, *args):
    result = app.test_cli_runner().invoke(args=["demo", *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def demo(app):
    """``idp demo`` has run."""
    return run_demo(app)


def credentials(app) -> dict:
    return json.loads(open(app.config["IDP_DEMO_CLIENT_FILE"]).read())


# --- idp demo ---------------------------------------------------------------------------

def test_idp_demo_sets_everything_up(app, demo):
    issuer = app.config["IDP_ISSUER"]
    for account in DEMO_ACCOUNTS:
        assert account.nir_display in demo and account.situation in demo
    assert DEMO_PASSWORD in demo
    assert f"{issuer}/demo/" in demo

    path = app.config["IDP_DEMO_CLIENT_FILE"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    creds = credentials(app)
    client = db.session.scalar(select(Client).where(Client.client_id == creds["client_id"]))
    assert client.check_client_secret(creds["client_secret"])
    assert client.redirect_uris == [f"{issuer}/demo/callback"]
    assert client.post_logout_redirect_uris == [f"{issuer}/demo/"]
    assert client.scope == "openid profile email affiliation"

    users = {u.nir: u for u in db.session.scalars(select(User))}
    assert set(users) == {a.nir for a in DEMO_ACCOUNTS}
    for account in DEMO_ACCOUNTS:
        assert crypto.verify_password(users[account.nir].password_hash, DEMO_PASSWORD)
    situations = {(u.affiliation, u.regime_code, u.email_verified) for u in users.values()}
    assert {("affiliated", "01", True), ("affiliated", "01", False), ("pending", "01", True),
            ("none", "01", True), ("affiliated", "02", True)} <= situations


def test_idp_demo_is_idempotent(app, demo):
    first = credentials(app)
    user = db.session.scalar(select(User).where(User.nir == JEANNE.nir))
    user.password_hash = crypto.hash_password("Un-autre-mot-de-passe")
    db.session.commit()

    output = run_demo(app)
    assert credentials(app) == first
    assert db.session.scalar(select(func.count()).select_from(Client)) == 1
    assert db.session.scalar(select(func.count()).select_from(User)) == len(DEMO_ACCOUNTS)
    assert f"0 created, 0 reset, {len(DEMO_ACCOUNTS)} kept" in output
    db.session.expire_all()
    assert not crypto.verify_password(db.session.get(User, user.id).password_hash, DEMO_PASSWORD)

    output = run_demo(app, "--reset-users")
    assert f"0 created, {len(DEMO_ACCOUNTS)} reset, 0 kept" in output
    db.session.expire_all()
    assert crypto.verify_password(db.session.get(User, user.id).password_hash, DEMO_PASSWORD)


def test_idp_demo_replaces_a_secret_that_no_longer_matches(app, demo):
    path = app.config["IDP_DEMO_CLIENT_FILE"]
    stale = {**credentials(app), "client_secret": "perdu"}
    with open(path, "w") as fh:
        json.dump(stale, fh)
    run_demo(app)
    creds = credentials(app)
    assert creds["client_id"] == stale["client_id"] and creds["client_secret"] != "perdu"
    client = db.session.scalar(select(Client).where(Client.client_id == creds["client_id"]))
    db.session.refresh(client)
    assert client.check_client_secret(creds["client_secret"])


# --- pages without the network ------------------------------------------------------------

@pytest.mark.parametrize("settings", [{}])
def test_demo_is_off_by_default(web):
    assert web.get("/demo/").status_code == 404
    assert web.get("/demo/mailbox").status_code == 404


def test_demo_asks_for_idp_demo_first(web):
    page = web.get("/demo/")
    assert page.status_code == 200
    assert "idp demo" in page.text and "pas encore prête" in page.text
    assert web.get("/demo/login").status_code == 503


def test_demo_pages_leave_the_provider_session_alone(web, demo):
    page = web.get("/demo/")
    assert "Se connecter avec mon compte ameli" in page.text
    assert JEANNE.nir_display in page.text and DEMO_PASSWORD in page.text
    assert "idp_csrf" not in " ".join(page.headers.getlist("Set-Cookie"))


def test_callback_refuses_an_unknown_state(web, demo, app):
    page = web.get(f"/demo/callback?code=abc&state=inconnu&iss={app.config['IDP_ISSUER']}")
    assert page.status_code == 400
    assert "mismatching_state" in page.text and "aucune connexion en cours" in page.text


@pytest.mark.parametrize("query", ["code=abc&state=x&iss=https://pirate.example", "code=abc&state=x",
                                   "error=access_denied&state=x&iss=https://pirate.example"])
def test_callback_refuses_another_issuer(web, demo, query):
    page = web.get(f"/demo/callback?{query}")
    assert page.status_code == 400
    assert "iss_mismatch" in page.text


# --- over real HTTP -----------------------------------------------------------------------

def mailbox_code(browser, base: str, to: str) -> str:
    """The latest 6-digit code mailed to ``to``, read in the demo mailbox like a person would."""
    listing = browser.get(f"{base}/demo/mailbox").text
    for row in re.findall(r"<tr>(.*?)</tr>", listing, re.S):
        if to in row:
            href = unescape(re.search(r'href="([^"]+)"', row).group(1))
            text = browser.get(urljoin(base, href)).text
            return re.search(r"\b(\d{6})\b", re.search(r"<pre[^>]*>(.*?)</pre>", text, re.S).group(1)).group(1)
    raise AssertionError(f"no mail for {to} in the demo mailbox")


def log_in(browser, base: str, authorize_url: str, account) -> str:
    """Follow the login journey like a person; return the URL the provider sends back to."""
    r = browser.get(authorize_url, allow_redirects=False)
    for _ in range(10):
        assert r.status_code in (302, 303), r.text[:800]
        location = urljoin(r.url, r.headers["Location"])
        if not location.startswith(f"{base}/connexion"):
            return location
        page = browser.get(location)
        assert page.status_code == 200, page.text[:800]
        if 'name="nir"' in page.text:
            data = {"nir": account.nir_display, "password": DEMO_PASSWORD}
        elif 'name="code"' in page.text:
            data = {"code": mailbox_code(browser, base, account.email)}
        else:  # a step that only asks to go on (« Recevoir un code »...)
            data = {}
        r = browser.submit(location, page.text, data)
    raise AssertionError("the login journey did not end")


def test_demo_login_userinfo_and_logout(live_server, demo, browser):
    base = live_server.url
    home = browser.get(f"{base}/demo/")
    assert "Se connecter avec mon compte ameli" in home.text

    start = browser.get(f"{base}/demo/login", allow_redirects=False)
    assert start.status_code == 302
    authorize = start.headers["Location"]
    params = parse_qs(urlparse(authorize).query)
    assert authorize.startswith(f"{base}/authorize?")
    assert params["code_challenge_method"] == ["S256"] and params["nonce"] and params["state"]
    assert params["redirect_uri"] == [f"{base}/demo/callback"]
    # The demo's state lives in its own cookie, on /demo only; the provider's session is untouched.
    assert [c.name for c in browser.cookies] == ["idp_demo"]
    assert all(c.path == "/demo" for c in browser.cookies if c.name == "idp_demo")

    callback = log_in(browser, base, authorize, JEANNE)
    assert callback.startswith(f"{base}/demo/callback?")
    page = browser.get(callback)
    assert page.status_code == 200, page.text[:1500]
    text = unescape(page.text)
    assert "Vous êtes connecté au site de démonstration" in text
    claims, userinfo = text.split("Réponse du point d'accès « userinfo »")
    for expected in ("nonce", "acr", "amr"):
        assert expected in claims
    for absent in ("given_name", "family_name"):  # the ID token carries the authentication only
        assert absent not in claims
    for expected in ("given_name", "Jeanne", "email", JEANNE.email, "affiliation", "CPAM de Paris"):
        assert expected in userinfo
    assert "Le <code>sub</code> est le même" in page.text

    # Single sign-on: prompt=none gets a code at once.
    again = browser.get(f"{base}/demo/login?prompt=none")
    assert again.status_code == 200 and "Vous êtes connecté" in again.text

    # Logout at the provider, back to /demo/ with our state.
    out = browser.get(f"{base}/demo/logout", allow_redirects=False)
    end_session = out.headers["Location"]
    params = parse_qs(urlparse(end_session).query)
    assert end_session.startswith(f"{base}/logout?")
    assert params["post_logout_redirect_uri"] == [f"{base}/demo/"] and params["id_token_hint"] and params["state"]
    back = browser.get(end_session, allow_redirects=False)
    assert back.status_code in (302, 303)
    assert back.headers["Location"].startswith(f"{base}/demo/?")
    assert parse_qs(urlparse(back.headers["Location"]).query)["state"] == params["state"]
    home = browser.get(back.headers["Location"])
    assert "Vous êtes déconnecté" in home.text
    assert "Se connecter avec mon compte ameli" in home.text

    # The provider's session is over: prompt=none now gets login_required.
    silent = browser.get(f"{base}/demo/login?prompt=none")
    assert silent.url.startswith(f"{base}/demo/callback?")
    assert parse_qs(urlparse(silent.url).query)["error"] == ["login_required"]
    assert silent.status_code == 400 and "login_required" in silent.text
    assert "Aucune session compte ameli active" in unescape(silent.text)


# --- the mailbox --------------------------------------------------------------------------

def test_mailbox_lists_console_mails(app, web):
    assert app.config["IDP_MAIL_URL"] == "console://"
    empty = web.get("/demo/mailbox")
    assert empty.status_code == 200 and "Aucun courriel" in empty.text

    send_mail("jeanne.martin@demo.invalid", "Premier courriel", "Bonjour\n")
    send_mail("paul.durand@demo.invalid", "Votre code de sécurité <script>alert(1)</script>",
              "Votre code : 314159\n", "<p>Votre code : <b>314159</b></p><script>alert(2)</script>")
    listing = web.get("/demo/mailbox").text
    assert "Boîte mail de démonstration" in listing
    assert listing.index("paul.durand@demo.invalid") < listing.index("jeanne.martin@demo.invalid")  # newest first
    assert "Premier courriel" in listing
    assert "<script>" not in listing and "&lt;script&gt;alert(1)" in listing

    name = sorted(os.listdir(app.config["IDP_MAIL_OUTBOX_DIR"]))[-1]
    page = web.get(f"/demo/mailbox/{name}")
    assert page.status_code == 200
    assert '<pre tabindex="0" aria-labelledby="texte">Votre code : 314159\n</pre>' in page.text  # axe scrollable-region-focusable
    assert f'<iframe title="Contenu du courriel" sandbox src="/demo/mailbox/{name}/html"' in page.text

    html = web.get(f"/demo/mailbox/{name}/html")
    assert html.status_code == 200 and "<b>314159</b>" in html.text
    csp = html.headers["Content-Security-Policy"]
    assert csp.startswith("sandbox;") and "default-src 'none'" in csp and "script-src" not in csp
    assert html.headers["X-Frame-Options"] == "SAMEORIGIN"


@pytest.mark.parametrize("name", ["inconnu.eml", "..%2Fdemo-client.json", ".cache.eml", "x" * 120 + ".eml"])
def test_mailbox_serves_only_mails(web, name):
    assert web.get(f"/demo/mailbox/{name}").status_code == 404
    assert web.get(f"/demo/mailbox/{name}/html").status_code == 404


# --- idp demo: birth dates, what each person shows, --reset-users keeps the running demo's issuer ----------

def test_idp_demo_lists_birth_dates_and_what_each_person_shows(app, demo, web):
    for account in DEMO_ACCOUNTS:
        line = next(ln for ln in demo.splitlines() if account.nir_display in ln)
        assert account.birth_date.strftime("%d/%m/%Y") in line and account.situation in line
        assert f"→ {account.shows}" in demo
    page = unescape(web.get("/demo/").text)
    for account in DEMO_ACCOUNTS:
        assert account.birth_date_display in page and account.shows in page
    assert JEANNE.birth_date_display == "12/05/1985"
    assert "Cas 1" in DEMO_ACCOUNTS[1].shows and "Cas 8" in DEMO_ACCOUNTS[2].shows and "Cas 7" in DEMO_ACCOUNTS[3].shows


def test_reset_users_keeps_the_issuer_of_the_running_demo(app, tmp_path, monkeypatch):
    """A demo served on port 8123: ``idp demo --reset-users`` without IDP_ISSUER must not re-register port 5000."""
    monkeypatch.delenv("IDP_ISSUER", raising=False)
    app.config["IDP_ISSUER"] = "http://127.0.0.1:8123"
    run_demo(app)                                            # as `make run PORT=8123` does (IDP_ISSUER set)
    served = credentials(app)
    app.config["IDP_ISSUER"] = "http://127.0.0.1:5000"       # a later shell: the default issuer
    output = run_demo(app, "--reset-users")
    assert "kept for http://127.0.0.1:8123" in output and "/demo/" in output
    assert credentials(app) == served
    client = db.session.scalar(select(Client).where(Client.client_id == served["client_id"]))
    db.session.refresh(client)
    assert client.redirect_uris == ["http://127.0.0.1:8123/demo/callback"]
    assert f"{len(DEMO_ACCOUNTS)} reset" in output

    monkeypatch.setenv("IDP_ISSUER", "http://127.0.0.1:5000")  # said explicitly: the demo moves there
    run_demo(app, "--reset-users")
    db.session.refresh(client)
    assert client.redirect_uris == ["http://127.0.0.1:5000/demo/callback"]


@pytest.mark.parametrize("settings", [{
    "DEMO": True, "MAIL_URL": "console://",
    # make run FAST=1 (Makefile FAST_SETTINGS)
    "CODE_LIFETIME": 60, "CODE_QUOTA_BLOCK": 120, "LOCK_DURATION": 60, "RESET_MAIL_QUOTA_BLOCK": 120,
    "RESET_LINK_LIFETIME": 300}], ids=["fast"])
def test_demo_page_says_the_lifetimes_in_force(web, settings):
    from login_pages import page_text

    text = page_text(web.get("/demo/").text)
    assert "make run FAST=1" in text
    assert "Code de sécurité valable 1 minute (cas 2" in text
    assert "demande de code bloquée 2 minutes (cas 3)" in text
    assert "blocage de 1 minute (cas 5 et 6)" in text
    assert "nouvelle demande possible après 2 minutes (cas 2) ; lien valable 5 minutes." in text


def test_make_run_fast_is_documented_and_never_the_default():
    from pathlib import Path

    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    assert "\nFAST ?=\n" in makefile                        # off unless asked for
    fast = re.search(r"FAST_SETTINGS = (.*?)\n(?!\s)", makefile, re.S).group(1)
    values = dict(pair.split("=") for pair in fast.replace("\\", " ").split())
    assert values == {"IDP_CODE_LIFETIME": "60", "IDP_CODE_QUOTA_BLOCK": "120", "IDP_LOCK_DURATION": "60",
                      "IDP_RESET_MAIL_QUOTA_BLOCK": "120", "IDP_RESET_LINK_LIFETIME": "300"}
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "make run FAST=1" in readme
