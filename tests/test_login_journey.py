"""The seed's login journey without error, steps 0 to 3, over real HTTP.

Seed ``ameli-login-journey``: step 0 NIR and password; step 1 « Recevoir un code
de sécurité » (sent to the personal mailbox, maybe in the spams); step 2 the
6-digit code by mail; step 3 the code and « J'utilise mon ordinateur personnel »,
then « Me connecter ». Also here: the security properties of the code, the
rules of the server-side flow state (identifier, renewal, expiry, no skipping,
back button), the provider's session lifetimes and the FAQ page.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
import requests
from sqlalchemy import select, update

from conftest import PASSWORD, csrf_token
from idp.models import AuthorizationCode, BrowserSession, LoginFlow, utcnow
from idp.timefmt import paris as app_paris
from login_pages import (
    CASE4_CODE,
    CODE_SUBJECT,
    NO_FLOW,
    Journey,
    cookie_attributes,
    flows,
    fresh,
    move,
    near,
    page_text,
    paris_hm,
    set_cookie_headers,
    step_of,
)
from oidc_flows import auth_params, query

SIX_DIGITS = re.compile(r"\b\d{6}\b")


# --- Step 0 ------------------------------------------------------------------------------------

def test_step0_page_asks_for_the_nir_and_the_password(app, journey, mailbox):
    page = journey.start()
    assert page.status_code == 200 and step_of(page) == "password"
    assert '<html lang="fr">' in page.text
    assert re.search(r'<label[^>]*for="nir"[^>]*>Numéro de sécurité sociale</label>', page.text)
    assert re.search(r'<label[^>]*for="password"[^>]*>Mot de passe</label>', page.text)
    assert re.search(r'<input[^>]*type="password"[^>]*>', page.text)
    assert re.search(r'<button type="submit" class="button">Continuer</button>', page.text)
    assert 'href="/connexion/aide"' in page.text
    text = page_text(page.text)
    if "recovery.start" in app.view_functions:  # « Mot de passe oublié ? » once recovery exists
        assert "Mot de passe oublié ?" in text
    else:
        assert "Mot de passe oublié" not in text
    assert mailbox.messages == []


# --- Steps 0 to 3 -----------------------------------------------------------------------------------

def test_steps_0_to_3_without_error_reach_the_relying_party_with_mfa(journey, user, mailbox):
    page = journey.start()

    # Step 0 → step 1 (Post/Redirect/Get).
    r = journey.password(user, follow=False)
    assert r.status_code == 303 and r.headers["Location"] == "/connexion"
    page = journey.get()
    assert page.status_code == 200 and step_of(page) == "code-request"

    # Step 1: told a code will be sent to the masked address, spams mentioned; nothing sent yet.
    text = page_text(page.text)
    assert "Un code de sécurité va vous être envoyé" in text
    assert "code de sécurité à 6 chiffres" in text
    assert "j***@exemple.fr" in text and user.email not in page.text
    assert "courriers indésirables (spams)" in text
    assert ">Recevoir un code de sécurité</button>" in page.text
    assert mailbox.to(user.email) == []

    # « Recevoir un code de sécurité » → step 3, one mail.
    r = journey.request_code(follow=False)
    assert r.status_code == 303
    page = journey.get()
    assert page.status_code == 200 and step_of(page) == "code"
    text = page_text(page.text)
    assert re.search(r'<label[^>]*for="code"[^>]*>Code de sécurité</label>', page.text)
    assert re.search(r'<input[^>]*type="checkbox"[^>]*name="remember"|<input[^>]*name="remember"[^>]*type="checkbox"',
                     page.text)
    assert "J'utilise mon ordinateur personnel" in text
    assert ">Me connecter</button>" in page.text
    assert ">Recevoir un nouveau code de sécurité</button>" in page.text
    assert "j***@exemple.fr" in text and "15 minutes" in text
    assert len(mailbox.to(user.email)) == 1

    # Step 3: the code of the mail → the relying party, with pwd + otp.
    r = journey.enter_code(journey.code(user.email))
    claims = journey.id_token_claims(r)
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["acr"] == "urn:idp:acr:mfa"
    assert len(mailbox.to(user.email)) == 1
    assert flows()[0].completed_at is not None


def test_step2_mail_is_french_multipart_with_the_code_and_its_paris_expiry(journey, user, mailbox):
    journey.up_to_code_entry(user)
    flow = flows()[0]
    assert near(flow.code_expires_at, utcnow() + timedelta(minutes=15))
    mail = mailbox.wait_for(user.email)

    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    assert mail["Subject"] == CODE_SUBJECT
    assert not re.search(r"\d", mail["Subject"])          # no code, no digit at all, in the subject
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail.recipients() == {user.email}

    text, html = mail.text_body(), mail.html_body()
    code = SIX_DIGITS.search(text).group(0)
    assert SIX_DIGITS.findall(text) == [code]
    assert re.search(rf">\s*{code}\s*<", html)
    assert '<html lang="fr">' in html
    for body in (text, page_text(html)):
        assert "Bonjour Jeanne Martin" in body
        assert "Voici votre code de sécurité" in body
        assert "valable 15 minutes" in body
        assert f"jusqu'à {paris_hm(flow.code_expires_at)} (heure de Paris)" in body
        assert "ne peut servir qu'une fois" in body


def test_step2_code_is_stored_only_as_a_keyed_hash(journey, user):
    journey.up_to_code_entry(user)
    code = journey.code(user.email)
    flow = flows()[0]
    assert re.fullmatch(r"[0-9a-f]{64}", flow.code_hash)
    assert flow.code_hash != code
    row = {c.name: getattr(flow, c.name) for c in LoginFlow.__table__.columns}
    assert all(code not in str(v) for v in row.values()), "the code is stored in clear"


def test_step2_code_comparison_is_constant_time_on_hashes(journey, user, monkeypatch):
    import pyotp.utils

    seen = []
    real = pyotp.utils.strings_equal

    def spy(a, b):
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(pyotp.utils, "strings_equal", spy)
    journey.up_to_code_entry(user)
    code = journey.code(user.email)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert journey.enter_code(wrong).status_code == 401
    assert len(seen) == 1
    assert all(re.fullmatch(r"[0-9a-f]{64}", s) for s in seen[0]) and wrong not in seen[0]


@pytest.fixture
def distinct_codes(monkeypatch):
    """Codes that are still random but never equal twice in a test (1 in 10^6 otherwise)."""
    from idp.mfa import codes

    seen: set[str] = set()
    real = codes.generate

    def generate() -> str:
        code = real()
        while code in seen:
            code = real()
        seen.add(code)
        return code

    monkeypatch.setattr(codes, "generate", generate)


def test_step2_code_is_bound_to_its_login_attempt(new_journey, user, mailbox, distinct_codes):
    first, second = new_journey(), new_journey()
    first.up_to_code_entry(user)
    first_code = first.code(user.email)
    second.up_to_code_entry(user)
    second_code = second.code(user.email)
    assert first_code != second_code
    # The first login's code does not open the second one (same account, same time).
    r = second.enter_code(first_code)
    assert r.status_code == 401 and CASE4_CODE in page_text(r.text)
    second.callback(second.enter_code(second_code))
    first.callback(first.enter_code(first_code))


def test_step3_code_is_single_use(journey, new_journey, user, distinct_codes):
    journey.up_to_code_entry(user)
    code = journey.code(user.email)
    step3 = journey.page
    old_flow_cookie = journey.browser.cookies.get("idp_flow")
    journey.callback(journey.enter_code(code))
    assert flows()[0].code_hash is None

    # The same form sent again with the flow identifier of that page: the login is over.
    replay = requests.Session()
    replay.cookies.update({"idp_flow": old_flow_cookie, "idp_csrf": journey.browser.cookies.get("idp_csrf")})
    r = replay.post(journey.step_url, data={"csrf_token": csrf_token(step3.text), "code": code},
                    allow_redirects=False, timeout=10)
    assert r.status_code == 303  # Post/Redirect/Get: the GET says the login is over
    r = replay.get(journey.step_url, allow_redirects=False, timeout=10)
    assert r.status_code == 400 and NO_FLOW in page_text(r.text)

    # Nor does the code open another login of the same account.
    other = new_journey()
    other.up_to_code_entry(user)
    assert other.code(user.email) != code
    assert other.enter_code(code).status_code == 401


def test_step3_asking_a_new_code_invalidates_the_previous_one(journey, user, mailbox, distinct_codes):
    journey.up_to_code_entry(user)
    old = journey.code(user.email)
    page = journey.resend()
    assert page.status_code == 200 and step_of(page) == "code"
    assert "Un nouveau code de sécurité vient d'être envoyé à j***@exemple.fr. Le code précédent ne fonctionne plus." \
        in page_text(page.text)
    assert len(mailbox.to(user.email)) == 2
    new = journey.code(user.email)
    assert new != old
    r = journey.enter_code(old)
    assert r.status_code == 401 and CASE4_CODE in page_text(r.text)
    journey.callback(journey.enter_code(new))


def test_step3_code_with_spaces_around_is_accepted(journey, user):
    journey.up_to_code_entry(user)
    journey.callback(journey.enter_code(f"  {journey.code(user.email)} "))


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "abcdef", "12 3456"])
def test_step3_malformed_code_is_refused_and_not_counted(journey, user, typed):
    from login_pages import code_limit

    journey.up_to_code_entry(user)
    r = journey.enter_code(typed)
    assert r.status_code == 400 and step_of(r) == "code"
    text = page_text(r.text)
    assert ("Saisissez le code de sécurité à 6 chiffres reçu par mail." in text if not typed
            else "Le code de sécurité comporte exactement 6 chiffres." in text)
    assert code_limit(user.id) is None
    journey.callback(journey.enter_code(journey.code(user.email)))


@pytest.mark.parametrize("settings", [{"MAIL_URL": "smtp://127.0.0.1:9?timeout=2"}], ids=["smtp-down"])
def test_mail_server_down_is_a_clear_page_and_the_click_can_be_retried(app, journey, user, mailbox, settings):
    journey.start()
    journey.password(user)
    r = journey.request_code()
    assert r.status_code == 503 and "Le mail n'a pas pu être envoyé" in page_text(r.text)
    again = journey.get()                                     # a reload shows the same answer, sends nothing
    assert again.status_code == 503 and "Le mail n'a pas pu être envoyé" in page_text(again.text)
    # « Réessayer » is a form that asks for the code again (step 1's request).
    assert re.search(r'<form method="post" action="/connexion">\s*<input[^>]*csrf_token[^>]*>\s*<button[^>]*>Réessayer',
                     again.text)
    app.config["IDP_MAIL_URL"] = mailbox.url                  # the mail server is back
    assert step_of(journey.request_code()) == "code"
    journey.callback(journey.enter_code(journey.code(user.email)))


@pytest.mark.parametrize("settings", [{"CODE_LIFETIME": 600}], ids=["10-minutes"])
def test_code_lifetime_setting_is_what_pages_and_mail_say(journey, user, mailbox, settings):
    page = journey.start()
    page = journey.password(user)
    assert "valable 10 minutes" in page_text(page.text)
    page = journey.request_code()
    assert "valable 10 minutes" in page_text(page.text)
    flow = flows()[0]
    assert flow.code_expires_at - flow.code_sent_at == timedelta(minutes=10)
    assert "valable 10 minutes" in mailbox.wait_for(user.email).text_body()


def test_paris_time_follows_summer_and_winter_time():
    assert app_paris(datetime(2026, 1, 15, 10, 5)) == "le jeudi 15 janvier 2026 à 11 h 05"
    assert app_paris(datetime(2026, 7, 15, 10, 5)) == "le mercredi 15 juillet 2026 à 12 h 05"


# --- The flow state: identifier, renewal, expiry, binding ---------------------------------------------

def test_flow_identifier_is_random_hashed_and_in_a_safe_cookie(journey, new_journey, user):
    journey.params, journey.verifier = auth_params(journey.client)
    r = journey.browser.get(f"{journey.url}/authorize", params=journey.params, allow_redirects=False, timeout=10)
    [header] = set_cookie_headers(r, "idp_flow")
    value, attrs = cookie_attributes(header)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", value)     # 32 random bytes, base64url: 256 bits
    assert "httponly" in attrs and attrs["samesite"] == "Lax" and attrs["path"] == "/"
    assert "secure" not in attrs                           # the issuer is http:// in the tests
    assert attrs["max-age"] == "1800"
    other = new_journey()
    other.start()
    assert other.browser.cookies.get("idp_flow") != value
    stored = flows()
    assert len(stored) == 2
    assert all(re.fullmatch(r"[0-9a-f]{64}", f.flow_hash) and f.flow_hash != value for f in stored)


@pytest.mark.parametrize("settings", [{"LOGIN_FLOW_LIFETIME": 120}], ids=["2-minutes"])
def test_flow_lifetime_setting(journey, settings):
    before = utcnow()
    journey.start()
    flow = flows()[0]
    assert near(flow.expires_at, before + timedelta(seconds=120))
    assert flow.expires_at - flow.created_at <= timedelta(seconds=121)


def _stale_browser(journey: Journey, flow_cookie: str) -> requests.Session:
    """Another tab of the same browser that still holds an old flow identifier."""
    stale = requests.Session()
    stale.cookies.update({"idp_flow": flow_cookie, "idp_csrf": journey.browser.cookies.get("idp_csrf")})
    return stale


def test_flow_identifier_is_renewed_after_the_password_and_the_old_one_is_dead(journey, user):
    page = journey.start()
    before = journey.browser.cookies.get("idp_flow")
    hash_before = flows()[0].flow_hash
    r = journey.password(user, follow=False)
    assert r.status_code == 303
    [header] = set_cookie_headers(r, "idp_flow")
    after, attrs = cookie_attributes(header)
    assert after != before and len(after) >= 43 and "httponly" in attrs
    assert flows()[0].flow_hash not in (hash_before,)

    stale = _stale_browser(journey, before)
    r = stale.get(journey.step_url, allow_redirects=False, timeout=10)
    assert r.status_code == 400 and NO_FLOW in page_text(r.text)
    r = stale.post(journey.step_url, data={"csrf_token": csrf_token(page.text), "nir": user.nir, "password": PASSWORD},
                   allow_redirects=True, timeout=10)
    assert r.history[0].status_code == 303 and r.status_code == 400 and NO_FLOW in page_text(r.text)
    # The renewed identifier goes on.
    assert step_of(journey.get()) == "code-request"


def test_flow_identifier_is_renewed_after_the_code_and_the_old_one_is_dead(journey, user):
    page = journey.up_to_code_entry(user)
    before = journey.browser.cookies.get("idp_flow")
    hash_before = flows()[0].flow_hash
    r = journey.enter_code(journey.code(user.email))
    journey.callback(r)
    flow = flows()[0]
    assert flow.flow_hash != hash_before and flow.completed_at is not None
    # The flow cookie is cleared, the login session cookie is set.
    [cleared] = set_cookie_headers(r, "idp_flow")
    value, attrs = cookie_attributes(cleared)
    assert value == "" and (attrs.get("max-age") == "0" or "1970" in attrs.get("expires", ""))
    [session] = set_cookie_headers(r, "idp_session")
    sid, attrs = cookie_attributes(session)
    assert len(sid) >= 43 and "httponly" in attrs and attrs["samesite"] == "Lax"
    assert "idp_flow" not in journey.browser.cookies

    stale = _stale_browser(journey, before)
    r = stale.post(journey.step_url, data={"csrf_token": csrf_token(page.text), "code": "123456"},
                   allow_redirects=True, timeout=10)
    assert r.history[0].status_code == 303 and r.status_code == 400 and NO_FLOW in page_text(r.text)


def test_expired_flow_is_a_clear_page_and_counts_nothing(journey, user):
    from login_pages import password_limit

    page = journey.start()
    move(update(LoginFlow).values(expires_at=utcnow()))
    r = journey.get()
    assert r.status_code == 400 and NO_FLOW in page_text(r.text) and '<html lang="fr">' in r.text
    r = journey.browser.post(journey.step_url, data={"csrf_token": csrf_token(page.text), "nir": user.nir,
                                                     "password": "faux"}, allow_redirects=True, timeout=10)
    assert r.history[0].status_code == 303 and r.status_code == 400 and NO_FLOW in page_text(r.text)
    assert password_limit(user.nir) is None


def test_expired_flow_at_the_code_step_cannot_be_finished(journey, user):
    journey.up_to_code_entry(user)
    move(update(LoginFlow).values(expires_at=utcnow()))
    r = journey.enter_code(journey.code(user.email))
    assert r.status_code == 400 and NO_FLOW in page_text(r.text)
    assert fresh(select(AuthorizationCode)) == []


def test_without_a_flow_the_login_page_is_a_clear_page(live_server, browser):
    r = browser.get(live_server.url + "/connexion", allow_redirects=False, timeout=10)
    assert r.status_code == 400 and NO_FLOW in page_text(r.text)
    assert "Se connecter avec mon compte ameli" in page_text(r.text)


def test_steps_cannot_be_skipped(journey, user, mailbox):
    journey.start()
    # At step 0, a code or « nouveau code » is not taken: the password page again, nothing sent.
    for data in ({"code": "123456"}, {"action": "resend"}, {"code": "123456", "remember": "y"}):
        r = journey.post(data)
        assert r.status_code == 400 and step_of(r) == "password"
    assert mailbox.messages == [] and flows()[0].passed == []

    # At step 1 no code exists yet: a code sent with the click only asks for one, it does not log in.
    journey.password(user)
    r = journey.post({"code": "123456"}, follow=False)
    assert r.status_code == 303 and r.headers["Location"] == "/connexion"
    assert "code" not in flows()[0].passed and fresh(select(BrowserSession)) == []
    # The only way on is the code of the mail.
    assert step_of(journey.get()) == "code"
    journey.callback(journey.enter_code(journey.code(user.email)))


def test_back_button_during_the_journey_shows_the_current_step(journey, user, mailbox):
    from login_pages import password_limit

    step0 = journey.start()
    journey.password(user)
    step1 = journey.page
    journey.request_code()
    # « Retour » to step 0, and its form sent again: the code page, the password is not counted.
    journey.page = step0
    r = journey.password(user, password="faux")
    assert r.status_code == 200 and step_of(r) == "code"
    row = password_limit(user.nir)  # the right password's attempt was released
    assert row is None or (row.count == 0 and row.locked_until is None)
    # « Retour » to step 1, and its button again: the code page, no second mail.
    journey.page = step1
    r = journey.request_code()
    assert r.status_code == 200 and step_of(r) == "code"
    assert len(mailbox.to(user.email)) == 1
    journey.callback(journey.enter_code(journey.code(user.email)))


def test_back_button_after_the_login_shows_a_clear_page(journey, user):
    step3 = journey.up_to_code_entry(user)
    code = journey.code(user.email)
    journey.callback(journey.enter_code(code))
    r = journey.browser.get(journey.step_url, allow_redirects=False, timeout=10)
    assert r.status_code == 400 and NO_FLOW in page_text(r.text)
    journey.page = step3
    r = journey.enter_code(code)
    assert r.status_code == 400 and NO_FLOW in page_text(r.text)
    assert len(fresh(select(AuthorizationCode))) == 1


def test_flow_answers_the_authorization_request_it_started_from(journey, user):
    """Two requests in the same browser: the flow of the newest is the one the pages go on with."""
    first_params, _ = auth_params(journey.client)
    r = journey.browser.get(f"{journey.url}/authorize", params=first_params, allow_redirects=False, timeout=10)
    assert r.status_code == 302
    first_cookie = journey.browser.cookies.get("idp_flow")
    journey.up_to_code_entry(user, state="second-tab")
    r = journey.enter_code(journey.code(user.email))
    got = journey.callback(r)
    assert got["state"] == "second-tab" and got["state"] != first_params["state"]
    assert [f.authorization_params["state"] for f in flows()] == [first_params["state"], "second-tab"]
    assert flows()[0].completed_at is None and flows()[1].completed_at is not None
    # The first request's flow is still its own: it starts again at step 0.
    stale = _stale_browser(journey, first_cookie)
    page = stale.get(journey.step_url, allow_redirects=False, timeout=10)
    assert page.status_code == 200 and step_of(page) == "password"


def test_cancel_sends_access_denied(journey, user):
    journey.start()
    journey.password(user)
    r = journey.post({}, follow=False, url=journey.step_url + "/annuler")
    assert r.status_code == 303
    got = query(r.headers["Location"])
    assert got["error"] == "access_denied" and got["state"] == journey.params["state"]


# --- The provider's session -------------------------------------------------------------------------------

def _prompt_none(journey: Journey) -> dict:
    params, _ = auth_params(journey.client, prompt="none")
    r = journey.browser.get(f"{journey.url}/authorize", params=params, allow_redirects=False, timeout=10)
    assert r.status_code == 302
    return query(r.headers["Location"])


def test_session_idle_lifetime(journey, user):
    journey.up_to_code_entry(user)
    journey.callback(journey.enter_code(journey.code(user.email)))
    # Used 25 minutes ago (idle lifetime 30): single sign-on, and the session is used again now.
    move(update(BrowserSession).values(last_seen_at=utcnow() - timedelta(minutes=25)))
    assert "code" in _prompt_none(journey)
    [session] = fresh(select(BrowserSession))
    assert near(session.last_seen_at, utcnow())
    # Unused for 30 minutes: over.
    move(update(BrowserSession).values(last_seen_at=utcnow() - timedelta(seconds=1800)))
    assert _prompt_none(journey)["error"] == "login_required"


def test_session_absolute_lifetime(journey, user):
    journey.up_to_code_entry(user)
    journey.callback(journey.enter_code(journey.code(user.email)))
    move(update(BrowserSession).values(created_at=utcnow() - timedelta(hours=11, minutes=59)))
    assert "code" in _prompt_none(journey)
    # 12 hours after the login, even if used a second ago: over.
    move(update(BrowserSession).values(created_at=utcnow() - timedelta(hours=12), last_seen_at=utcnow()))
    assert _prompt_none(journey)["error"] == "login_required"


@pytest.mark.parametrize("settings", [{"SESSION_IDLE_LIFETIME": 60, "SESSION_ABSOLUTE_LIFETIME": 600}],
                         ids=["short"])
def test_session_lifetime_settings(journey, user, settings):
    journey.up_to_code_entry(user)
    r = journey.enter_code(journey.code(user.email))
    journey.callback(r)
    [header] = set_cookie_headers(r, "idp_session")
    assert cookie_attributes(header)[1]["max-age"] == "600"
    move(update(BrowserSession).values(last_seen_at=utcnow() - timedelta(seconds=61)))
    assert _prompt_none(journey)["error"] == "login_required"


# --- FAQ -----------------------------------------------------------------------------------------------

def test_faq_help_page(live_server, journey):
    r = requests.get(live_server.url + "/connexion/aide", timeout=10)
    assert r.status_code == 200 and '<html lang="fr">' in r.text
    text = page_text(r.text)
    assert "3646" in text                                             # no access to the mailbox
    assert "J'utilise mon ordinateur personnel" in text and "cookie" in text   # asked again within 6 months
    assert "Mot de passe oublié ?" in text                            # forgotten password
    assert "spams" in text and "valable 15 minutes" in text
    page = journey.start()
    assert 'href="/connexion/aide"' in page.text
