"""« Mon compte – Sécurité » › « Application d'authentification » (issue 12), over real HTTP.

The person enrols an app from the page (the key read off the page, the code computed
with pyotp as an app would), sees the ten recovery codes once, regenerates them, removes
the app; then logs in at a partner site with the app. Every change needs the fresh login;
wrong first codes are counted by one atomic statement before they are compared.
"""

from __future__ import annotations

import re

import pyotp
from sqlalchemy import select

from conftest import Browser, csrf_token
from idp.mfa import recovery_codes, totp
from idp.models import RecoveryCode, TotpCredential, User
from login_pages import fresh, limit_row, page_text, race, step_of
from mfa_pages import next_code, settle, up_to_app_code, up_to_recovery_code
from test_account import SPACE, age_sessions, enter, events, post, space  # noqa: F401  (the fixture)

KEY_RE = re.compile(r'data-secret-key>((?:<span>[A-Z2-7]+</span> ?)+)</code>')
CODES_RE = re.compile(r"<li><code>([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})</code></li>")
ENROL = SPACE + "/application/activer"
CODES = SPACE + "/codes-de-secours/nouveaux"


# --- helpers -------------------------------------------------------------------------------------

def start_enrolment(url: str, browser: Browser, user) -> tuple[str, object]:
    """« Activer une application d'authentification »: the page, and the key it shows (spaces removed)."""
    app_page = browser.get(url + SPACE + "/application", timeout=10)
    r = post(url, browser, app_page, ENROL)
    assert r.status_code == 303 and r.headers["Location"] == ENROL, (r.status_code, r.headers.get("Location"))
    page = browser.get(url + ENROL, allow_redirects=False, timeout=10)
    assert page.status_code == 200, page.text[:300]
    return shown_key(page), page


def shown_key(page) -> str:
    """The key written out on the enrolment page, as a person types it into the app (spaces dropped)."""
    found = KEY_RE.search(page.text)
    assert found, "no key written out on the page"
    return re.sub(r"</?span>| ", "", found.group(1))


def confirm(url: str, browser: Browser, page, code: str):
    return post(url, browser, page, ENROL + "/code", {"code": code})


def enrol_on_pages(url: str, browser: Browser, user) -> tuple[str, list[str]]:
    """Enrol through the pages; ``(secret, recovery codes shown)``."""
    settle()
    secret, page = start_enrolment(url, browser, user)
    r = confirm(url, browser, page, pyotp.TOTP(secret).now())
    assert r.status_code == 303 and r.headers["Location"] == CODES, (r.status_code, r.headers.get("Location"))
    shown = browser.get(url + CODES, timeout=10)
    return secret, CODES_RE.findall(shown.text)


def reload_user(user) -> User:
    [row] = fresh(select(User).where(User.id == user.id))
    return row


def wrong(code: str) -> str:
    """A six-digit code that is none of the codes within the drift."""
    for candidate in ("000000", "111111", "222222", "333333"):
        if candidate != code:
            return candidate
    raise AssertionError


# --- enrolment -----------------------------------------------------------------------------------

def test_enrol_with_the_key_written_out_then_log_in_with_the_app_at_a_partner_site(space, browser, user,
                                                                                   new_journey, mailbox):
    overview = enter(space, browser, user)
    assert 'data-app-status="none"' in overview.text and f'href="{SPACE}/application"' in overview.text
    settle()
    secret, page = start_enrolment(space, browser, user)
    text = page_text(page.text)
    # The QR code made in the process (inline SVG, with a text alternative), the key in groups of 4, the settings.
    assert re.search(r'<div class="qr" role="img" aria-label="QR code[^"]+"[^>]*>\s*<svg', page.text)
    assert re.fullmatch(r"(<span>[A-Z2-7]{4}</span> ){7}<span>[A-Z2-7]{4}</span>", KEY_RE.search(page.text).group(1))
    assert "30 secondes" in text and "SHA-1" in text and "Nombre de chiffres 6" in text
    assert '<label class="label" for="code">Code affiché par l&#39;application</label>' in page.text
    # The pending secret stays out of every URL; a reload shows the same key, not a new one.
    again = browser.get(space + ENROL, timeout=10)
    assert shown_key(again) == secret
    assert not totp.is_enrolled(reload_user(user))

    r = confirm(space, browser, page, pyotp.TOTP(secret).now())
    assert r.status_code == 303 and r.headers["Location"] == CODES and secret not in r.headers["Location"]
    shown = browser.get(space + CODES, timeout=10)
    codes = CODES_RE.findall(shown.text)
    assert len(codes) == 10 == len(set(codes))
    assert 'data-notice="app_enrolled"' in shown.text and "qu'une seule fois" in page_text(shown.text)
    assert "data-print hidden>Imprimer</button>" in shown.text
    assert shown.headers["Cache-Control"] == "no-store"
    assert totp.is_enrolled(reload_user(user))
    assert len(events(user, "mfa_app_enrolled")) == 1 and len(events(user, "recovery_codes_generated")) == 1
    # The enrolment page now has nothing to show.
    r = browser.get(space + ENROL, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"] == SPACE + "/application"
    overview = browser.get(space + SPACE, timeout=10)
    assert 'data-app-status="active"' in overview.text and "10 codes de secours restants" in page_text(overview.text)

    # A real partner login with the app: step 1's choice, the app's code, amr pwd otp mfa, no mail.
    mails = len(mailbox.to(user.email))
    journey = new_journey()
    up_to_app_code(journey, user)
    claims = journey.id_token_claims(journey.post({"code": next_code(secret)}, follow=False))
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert not [m for m in mailbox.to(user.email)[mails:] if "code" in m.subject.lower()]  # no security code mailed
    # And a recovery code shown on the page stands in for the app.
    journey = new_journey()
    up_to_recovery_code(journey, user)
    r = journey.post({"code": codes[3]})
    assert step_of(r) == "recovery-notice"


def test_codes_are_shown_once_a_reload_shows_none(space, browser, user):
    enter(space, browser, user)
    _, codes = enrol_on_pages(space, browser, user)
    assert len(codes) == 10
    reload = browser.get(space + CODES, timeout=10)
    assert reload.status_code == 200 and CODES_RE.findall(reload.text) == []
    assert "data-codes-gone" in reload.text and codes[0] not in reload.text


def test_a_wrong_first_code_is_refused_on_its_field_and_activates_nothing(space, browser, user, app):
    enter(space, browser, user)
    settle()
    secret, page = start_enrolment(space, browser, user)
    r = confirm(space, browser, page, wrong(pyotp.TOTP(secret).now()))
    assert r.status_code == 303 and r.headers["Location"] == ENROL
    back = browser.get(space + ENROL, timeout=10)
    assert "<title>Erreur : Activer une application d'authentification" in back.text
    assert 'aria-describedby="code-aide code-erreur"' in back.text and 'aria-invalid="true"' in back.text
    assert 'id="code-erreur">Ce code est incorrect.' in back.text and 'href="#code"' in back.text
    assert shown_key(back) == secret  # the same key to try again
    assert not totp.is_enrolled(reload_user(user)) and events(user, "mfa_app_enrolled") == []
    assert limit_row("app-enrol", f"user:{user.id}").count == 1
    # A code of the wrong shape is said so, and not counted.
    confirm(space, browser, back, "12ab")
    back = browser.get(space + ENROL, timeout=10)
    assert "Le code de l&#39;application comporte exactement 6 chiffres." in back.text
    assert limit_row("app-enrol", f"user:{user.id}").count == 1
    # A right code then activates it and forgets the wrong one.
    r = confirm(space, browser, back, pyotp.TOTP(secret).now())
    assert r.headers["Location"] == CODES and totp.is_enrolled(reload_user(user))
    assert limit_row("app-enrol", f"user:{user.id}").count == 0


def test_wrong_first_codes_lock_the_confirmation_never_the_login(space, browser, user, app, new_browser):
    enter(space, browser, user)
    settle()
    secret, page = start_enrolment(space, browser, user)
    limit = app.config["IDP_ACCOUNT_APP_ENROL_FAILURES"]
    for _ in range(limit):
        confirm(space, browser, page, wrong(pyotp.TOTP(secret).now()))
    back = browser.get(space + ENROL, timeout=10)
    assert 'data-error="app_enrol_locked"' in back.text and "bloquée jusqu'à" in back.text
    row = limit_row("app-enrol", f"user:{user.id}")
    assert row.count == limit and row.locked_until is not None
    [locked] = events(user, "lock_set")
    assert locked.detail["kind"] == "app-enrol"
    # Locked: even the right code is not compared, nothing activated.
    confirm(space, browser, back, pyotp.TOTP(secret).now())
    assert 'data-error="app_enrol_locked"' in browser.get(space + ENROL, timeout=10).text
    assert not totp.is_enrolled(reload_user(user))
    assert limit_row("app-enrol", f"user:{user.id}").count == limit
    # A count of its own: the login's code counter is untouched, a new login works.
    login_codes = limit_row("code", f"user:{user.id}")
    assert login_codes is None or (login_codes.count == 0 and login_codes.locked_until is None)
    enter(space, new_browser(), user)


def test_parallel_first_codes_on_several_workers_are_compared_no_more_than_the_rule(served, user, app, mailbox):
    browser = Browser(mailbox)
    enter(served.url, browser, user, path="/application")
    settle(10)
    secret, page = start_enrolment(served.url, browser, user)
    served.reset_checks()
    bad = wrong(pyotp.TOTP(secret).now())
    posts = []
    for _ in range(16):
        b = Browser(mailbox)
        b.cookies.update(browser.cookies)
        posts.append((b, served.url + ENROL + "/code", {"csrf_token": csrf_token(page.text), "code": bad}))
    responses = race(posts)
    assert all(r.status_code == 303 for r in responses), [r.status_code for r in responses]
    limit = app.config["IDP_ACCOUNT_APP_ENROL_FAILURES"]
    assert served.checks("totp") == limit  # compared as often as the rule allows, not 16 times
    row = limit_row("app-enrol", f"user:{user.id}")
    assert row.count == limit and row.locked_until is not None
    assert len(events(user, "lock_set")) == 1
    assert not totp.is_enrolled(reload_user(user))


# --- recovery codes --------------------------------------------------------------------------------

def test_regenerating_voids_the_old_codes_and_shows_the_new_once(space, browser, user):
    enter(space, browser, user)
    _, first = enrol_on_pages(space, browser, user)
    app_page = browser.get(space + SPACE + "/application", timeout=10)
    assert 'data-codes-left="10"' in app_page.text
    r = post(space, browser, app_page, CODES)
    assert r.status_code == 303 and r.headers["Location"] == CODES
    shown = browser.get(space + CODES, timeout=10)
    second = CODES_RE.findall(shown.text)
    assert len(second) == 10 and not set(first) & set(second)
    assert 'data-notice="codes_regenerated"' in shown.text
    assert CODES_RE.findall(browser.get(space + CODES, timeout=10).text) == []
    assert len(events(user, "recovery_codes_generated")) == 2
    person = reload_user(user)
    assert not recovery_codes.consume(person, first[0])
    assert recovery_codes.consume(person, second[0])
    from idp.extensions import db
    db.session.commit()
    assert 'data-codes-left="9"' in browser.get(space + SPACE + "/application", timeout=10).text


def test_without_an_app_no_codes_are_generated(space, browser, user):
    app_page = enter(space, browser, user, path="/application")
    assert 'data-app-status="none"' in app_page.text
    r = post(space, browser, app_page, CODES)
    assert r.status_code == 303 and r.headers["Location"] == SPACE + "/application"
    back = browser.get(space + SPACE + "/application", timeout=10)
    assert 'data-error="app_none"' in back.text and "<title>Erreur :" in back.text
    assert fresh(select(RecoveryCode)) == [] and events(user, "recovery_codes_generated") == []


# --- removal ---------------------------------------------------------------------------------------

def test_removing_the_app_removes_the_recovery_codes_and_the_login_asks_the_mail_code(space, browser, user,
                                                                                       new_journey):
    enter(space, browser, user)
    enrol_on_pages(space, browser, user)
    confirm_page = browser.get(space + SPACE + "/application/retirer", timeout=10)
    assert confirm_page.status_code == 200 and "codes de secours (10 restants)" in page_text(confirm_page.text)
    r = post(space, browser, confirm_page, SPACE + "/application/retirer")
    assert r.status_code == 303 and r.headers["Location"] == SPACE + "/application"
    done = browser.get(space + SPACE + "/application", timeout=10)
    assert 'data-notice="app_removed"' in done.text and "ainsi que vos codes de secours" in page_text(done.text)
    assert 'data-app-status="none"' in done.text
    assert fresh(select(TotpCredential)) == [] and fresh(select(RecoveryCode)) == []
    [removed] = events(user, "mfa_app_removed")
    assert removed.detail == {"by": "person"}
    # Removing again changes nothing; the confirmation page has nothing to confirm.
    r = post(space, browser, confirm_page, SPACE + "/application/retirer")
    assert 'data-error="app_none"' in browser.get(space + r.headers["Location"], timeout=10).text
    r = browser.get(space + SPACE + "/application/retirer", allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"] == SPACE + "/application"
    assert len(events(user, "mfa_app_removed")) == 1
    journey = new_journey()
    journey.start()
    assert step_of(journey.password(user)) == "code-request"


# --- whose state, which login ----------------------------------------------------------------------

def test_another_persons_codes_and_key_are_never_shown(space, new_browser, user, make_user):
    jeanne, other = new_browser(), new_browser()
    paul = make_user(given_name="Paul")
    enter(space, jeanne, user)
    enter(space, other, paul)
    settle()
    secret, page = start_enrolment(space, jeanne, user)
    r = confirm(space, jeanne, page, pyotp.TOTP(secret).now())
    assert r.headers["Location"] == CODES
    # Jeanne's one-shot state, carried into Paul's browser, shows Paul nothing.
    flask_cookie = [c for c in jeanne.cookies if "idp_csrf" in c.name]
    assert flask_cookie
    for c in flask_cookie:
        other.cookies.set(c.name, c.value, domain=c.domain, path=c.path)
    shown = other.get(space + CODES, timeout=10)
    assert CODES_RE.findall(shown.text) == [] and "data-codes-gone" in shown.text
    assert len(CODES_RE.findall(jeanne.get(space + CODES, timeout=10).text)) == 10
    # Jeanne starts another enrolment: Paul's enrolment page shows no key of hers.
    start_enrolment(space, jeanne, user)
    r = other.get(space + ENROL, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"] == SPACE + "/application"
    paul_page = other.get(space + SPACE + "/application", timeout=10)
    assert 'data-app-status="none"' in paul_page.text


def test_every_change_needs_the_fresh_login(space, browser, user):
    app_page = enter(space, browser, user, path="/application")
    age_sessions(user, 901)
    assert browser.get(space + SPACE + "/application", timeout=10).status_code == 200  # reading: the session
    for path in ("/application/activer", "/codes-de-secours/nouveaux", "/application/retirer"):
        r = post(space, browser, app_page, SPACE + path)
        assert r.status_code == 303 and r.headers["Location"].endswith("/connexion"), path
    for path in ("/application/activer", "/application/retirer"):
        r = browser.get(space + SPACE + path, allow_redirects=False, timeout=10)
        assert r.status_code == 303 and r.headers["Location"].endswith("/connexion"), path
    assert fresh(select(TotpCredential)) == []


def test_a_post_without_csrf_token_changes_nothing(space, browser, user):
    enter(space, browser, user, path="/application")
    r = browser.post(space + ENROL, data={}, allow_redirects=False, timeout=10)
    assert r.status_code == 400 and fresh(select(TotpCredential)) == []


def test_no_key_code_or_recovery_code_of_the_enrolment_reaches_a_log(make_served, user, mailbox):
    server = make_served(extra_env={"IDP_TEST_LOG_LEVEL": "INFO"})
    browser = Browser(mailbox)
    enter(server.url, browser, user, path="/application")
    settle()
    secret, page = start_enrolment(server.url, browser, user)
    first = pyotp.TOTP(secret).now()
    confirm(server.url, browser, page, wrong(first))
    r = confirm(server.url, browser, browser.get(server.url + ENROL, timeout=10), first)
    assert r.headers["Location"] == CODES
    codes = CODES_RE.findall(browser.get(server.url + CODES, timeout=10).text)
    app_page = browser.get(server.url + SPACE + "/application", timeout=10)
    post(server.url, browser, app_page, CODES)
    codes += CODES_RE.findall(browser.get(server.url + CODES, timeout=10).text)
    assert len(codes) == 20
    logs = server.logs()
    assert "POST /mon-compte/securite/application/activer/code" in logs  # the logs were written
    secrets = [secret, " ".join(re.findall(".{4}", secret)), *codes, *(c.replace("-", "") for c in codes)]
    assert [s for s in secrets if s in logs] == []
    assert not re.search(rf"(?<!\d){first}(?!\d)", logs)  # the first code (six digits standing alone)
