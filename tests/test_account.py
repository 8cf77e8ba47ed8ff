"""« Mon compte – Sécurité » (issue 12): the security space, over real HTTP.

Reached on the provider's own login session; without one, its own login (no partner
site) and back. Reading needs the session; every change needs a login with the second
factor at most IDP_ACCOUNT_REAUTH seconds old, asked even on a trusted browser.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from conftest import PASSWORD, Browser, csrf_token
from idp.extensions import db
from idp.models import AuditEvent, BrowserSession, EmailValidation, Grant, LoginFlow, TrustedDevice, User, utcnow
from login_pages import fresh, move, near, page_text, password_limit, paris, step_of

SPACE = "/mon-compte/securite"
NEW_PASSWORD = "Nouveau-Mot2passe"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"
CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
          "Safari/537.36")


# --- helpers -------------------------------------------------------------------------------------

def enter(url: str, browser: Browser, user, path: str = "", remember: bool = False, password: str = PASSWORD):
    """Open a page of the space without a session: its own login, then back to the page."""
    r = browser.get(url + SPACE + path, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"].endswith("/connexion"), (r.status_code, r.text[:200])
    r = browser.finish_login(url + "/connexion", user, remember=remember, password=password)
    assert r.status_code == 303 and r.headers["Location"] == SPACE + path, (r.status_code, page_text(r.text)[:300])
    page = browser.get(url + SPACE + path, allow_redirects=False, timeout=10)
    assert page.status_code == 200, page.text[:300]
    return page


def post(url: str, browser: Browser, page, action: str, data: dict | None = None):
    return browser.post(url + action, data={"csrf_token": csrf_token(page.text), **(data or {})},
                        allow_redirects=False, timeout=10)


def age_sessions(user, seconds: int) -> None:
    move(update(BrowserSession).where(BrowserSession.user_id == user.id)
         .values(auth_time=BrowserSession.auth_time - seconds))


def events(user, name: str) -> list[AuditEvent]:
    return fresh(select(AuditEvent).where(AuditEvent.user_id == user.id, AuditEvent.event == name)
                 .order_by(AuditEvent.id))


def live_sessions(user) -> list[BrowserSession]:
    return fresh(select(BrowserSession).where(BrowserSession.user_id == user.id, BrowserSession.ended_at.is_(None)))


@pytest.fixture
def space(live_server, browser):
    return live_server.url


# --- access: the session, the space's own login, the fresh login ---------------------------------

def test_without_a_session_the_space_starts_its_own_login_and_comes_back(space, browser, user):
    r = browser.get(space + SPACE, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"].endswith("/connexion")
    login = browser.get(space + "/connexion", timeout=10)
    text = page_text(login.text)
    assert step_of(login) == "password" and "Connexion à votre espace sécurité" in text
    assert "site partenaire" not in text
    [flow] = fresh(select(LoginFlow))
    assert flow.client_id is None and flow.purpose == "account" and flow.return_to == SPACE
    assert flow.second_factor_required is False
    page = enter(space, browser, user)
    assert "Jeanne Martin" in page_text(page.text) and "<title>Mon compte – Sécurité" in page.text
    [login_row] = events(user, "login_succeeded")
    assert login_row.client_id is None and login_row.detail["purpose"] == "account"


def test_a_page_of_the_space_comes_back_to_itself_after_the_login(space, browser, user):
    page = enter(space, browser, user, path="/activite")
    assert 'data-account-page="account.recent_activity"' in page.text


def test_cancelling_the_space_login_lands_on_a_page_of_the_space(space, browser, user):
    browser.get(space + SPACE, allow_redirects=False, timeout=10)
    login = browser.get(space + "/connexion", timeout=10)
    assert "Annuler et revenir au site partenaire" not in login.text
    r = browser.post(space + "/connexion/annuler", data={"csrf_token": csrf_token(login.text)},
                     allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"] == SPACE + "/connexion-annulee"
    assert "Connexion annulée" in page_text(browser.get(space + r.headers["Location"], timeout=10).text)


def test_a_partner_login_session_opens_the_space_without_another_login(space, journey, user):
    journey.up_to_code_entry(user)
    journey.callback(journey.enter_code(journey.code(user.email)))
    page = journey.browser.get(space + SPACE, allow_redirects=False, timeout=10)
    assert page.status_code == 200 and "Jeanne Martin" in page_text(page.text)


def test_a_change_past_the_reauth_age_asks_a_fresh_login_with_the_code(space, browser, user, mailbox):
    index = enter(space, browser, user)
    age_sessions(user, 901)
    r = post(space, browser, index, SPACE + "/deconnexion-partout")
    assert r.status_code == 303 and r.headers["Location"].endswith("/connexion")
    assert len(live_sessions(user)) == 1  # nothing was done
    [flow] = fresh(select(LoginFlow).where(LoginFlow.completed_at.is_(None)))
    assert flow.second_factor_required is True and flow.login_hint == user.nir and flow.return_to == SPACE
    page = browser.get(space + "/connexion", timeout=10)
    assert 'value="' + user.nir + '"' in page.text  # the NIR is filled in
    r = browser.finish_login(space + "/connexion", user)
    assert r.headers["Location"] == SPACE
    assert len(mailbox.to(user.email)) == 2  # a second code was asked


def test_within_the_reauth_age_a_change_needs_no_new_login(space, browser, user, settings):
    index = enter(space, browser, user)
    age_sessions(user, 880)
    r = post(space, browser, index, SPACE + "/navigateurs/retirer-tous")
    assert r.status_code == 303 and r.headers["Location"] == SPACE + "/navigateurs"


def test_a_trusted_browser_login_reads_but_must_log_in_with_the_code_to_change(space, browser, user, journey,
                                                                                  mailbox):
    # A partner login with « J'utilise mon ordinateur personnel », then one without a code.
    journey.up_to_code_entry(user)
    journey.callback(journey.enter_code(journey.code(user.email), remember=True))
    journey.start(prompt="login")
    journey.callback(journey.password(user, follow=False))
    [row] = live_sessions(user)
    assert "mfa" not in row.amr
    devices_page = browser.get(space + SPACE + "/navigateurs", timeout=10)
    assert devices_page.status_code == 200 and "data-this-browser" in devices_page.text
    [device] = fresh(select(TrustedDevice))
    r = post(space, browser, devices_page, f"{SPACE}/navigateurs/{device.id}/retirer")
    assert r.status_code == 303 and r.headers["Location"].endswith("/connexion")
    assert fresh(select(TrustedDevice))[0].revoked_at is None
    # The fresh login asks the code although this browser is trusted.
    page = browser.get(space + "/connexion", timeout=10)
    r = browser.submit(space + "/connexion", page.text, {"nir": user.nir, "password": PASSWORD})
    assert step_of(browser.get(space + "/connexion", timeout=10)) == "code-request"
    r = browser.finish_login(space + "/connexion", user)
    assert r.headers["Location"] == SPACE + "/navigateurs"
    page = browser.get(space + SPACE + "/navigateurs", timeout=10)
    r = post(space, browser, page, f"{SPACE}/navigateurs/{device.id}/retirer")
    assert r.status_code == 303 and r.headers["Location"] == SPACE + "/navigateurs"
    assert fresh(select(TrustedDevice))[0].revoked_at is not None


def test_the_change_pages_themselves_need_the_fresh_login(space, browser, user):
    enter(space, browser, user)
    age_sessions(user, 901)
    for path in ("/mot-de-passe", "/adresse-mail"):
        r = browser.get(space + SPACE + path, allow_redirects=False, timeout=10)
        assert r.status_code == 303 and r.headers["Location"].endswith("/connexion"), path
    assert browser.get(space + SPACE + "/activite", allow_redirects=False, timeout=10).status_code == 200


def test_a_post_without_csrf_token_changes_nothing(space, browser, user):
    enter(space, browser, user)
    r = browser.post(space + SPACE + "/deconnexion-partout", allow_redirects=False, timeout=10)
    assert r.status_code == 400 and len(live_sessions(user)) == 1


# --- trusted browsers ------------------------------------------------------------------------------

def trust(space, b: Browser, user, agent: str):
    b.headers["User-Agent"] = agent
    enter(space, b, user, remember=True)


def test_trusted_browsers_listed_with_browser_system_first_and_last_use_this_one_marked(space, new_browser, user):
    a, b = new_browser(), new_browser()
    trust(space, a, user, FIREFOX)
    trust(space, b, user, CHROME)
    labels = sorted(d.label for d in fresh(select(TrustedDevice)))
    assert labels == ["Chrome 120, Linux", "Firefox 121, Windows 10"]  # parsed, not the raw User-Agent
    page = a.get(space + SPACE + "/navigateurs", timeout=10)
    text = page_text(page.text)
    assert "Firefox 121, Windows 10" in text and "Chrome 120, Linux" in text
    items = re.findall(r'<li data-browser="(\d+)">(.*?)</li>', page.text, re.S)
    [this] = [body for _, body in items if "data-this-browser" in body]
    assert "Firefox 121" in this
    assert page.text.count("data-this-browser") == 1
    device = fresh(select(TrustedDevice).where(TrustedDevice.label.like("Firefox%")))[0]
    assert f"Première utilisation le {paris(device.created_at)}" in text


def test_a_revoked_browser_is_asked_for_a_code_at_its_next_login(space, new_browser, user, new_journey, mailbox):
    a = new_browser()
    trust(space, a, user, FIREFOX)
    other = new_journey()  # another computer, trusted too
    other.up_to_code_entry(user)
    other.callback(other.enter_code(other.code(user.email), remember=True))
    other_device = fresh(select(TrustedDevice).order_by(TrustedDevice.id.desc()))[0]
    page = a.get(space + SPACE + "/navigateurs", timeout=10)
    r = post(space, a, page, f"{SPACE}/navigateurs/{other_device.id}/retirer")
    assert r.status_code == 303
    notice = a.get(space + SPACE + "/navigateurs", timeout=10)
    assert "n'est plus un navigateur de confiance" in page_text(notice.text)
    [row] = events(user, "trusted_device_revoked")
    assert row.detail == {"count": 1, "reason": "account", "device": other_device.id}
    # Its next login: the password, then step 1 (a code), not straight to the partner.
    other.start(prompt="login")
    other.password(user)
    assert step_of(other.page) == "code-request"


def test_revoking_someone_elses_browser_changes_nothing(space, new_browser, user, make_user):
    a = new_browser()
    trust(space, a, user, FIREFOX)
    someone = make_user()
    b = new_browser()
    trust(space, b, someone, CHROME)
    theirs = fresh(select(TrustedDevice).where(TrustedDevice.user_id == someone.id))[0]
    page = a.get(space + SPACE + "/navigateurs", timeout=10)
    r = post(space, a, page, f"{SPACE}/navigateurs/{theirs.id}/retirer")
    assert r.status_code == 303
    assert "rien n'a été modifié" in page_text(a.get(space + SPACE + "/navigateurs", timeout=10).text)
    assert fresh(select(TrustedDevice).where(TrustedDevice.id == theirs.id))[0].revoked_at is None
    assert "Chrome" not in page_text(page.text)  # never listed either
    for number in (10**30, 0):
        r = post(space, a, page, f"{SPACE}/navigateurs/{number}/retirer")
        assert r.status_code == 303 and r.headers["Location"] == SPACE + "/navigateurs"
    assert all(d.revoked_at is None for d in fresh(select(TrustedDevice)))


def test_revoke_all_trusted_browsers(space, new_browser, user):
    a, b = new_browser(), new_browser()
    trust(space, a, user, FIREFOX)
    trust(space, b, user, CHROME)
    page = a.get(space + SPACE + "/navigateurs", timeout=10)
    r = post(space, a, page, SPACE + "/navigateurs/retirer-tous")
    assert r.status_code == 303
    assert all(d.revoked_at is not None for d in fresh(select(TrustedDevice)))
    page = a.get(space + SPACE + "/navigateurs", timeout=10)
    assert "data-no-browser" in page.text and "retirés (2)" in page_text(page.text)


# --- recent activity -------------------------------------------------------------------------------

def test_activity_shows_the_persons_own_logins_and_events_never_another_persons(space, new_journey, make_client,
                                                                               make_user, browser, new_browser):
    jeanne, paul = make_user(), make_user(given_name="Paul")
    other_client = make_client(name="Mutuelle de Paul")
    j = new_journey(browser)
    j.start()
    j.password(jeanne, password="Mauvais-1234")  # case 4, on her account
    j.up_to_code_entry(jeanne, **{})
    j.callback(j.enter_code(j.code(jeanne.email)))
    from login_pages import Journey

    p = Journey(space, new_browser(), other_client[0], other_client[1])
    p.up_to_code_entry(paul)
    p.callback(p.enter_code(p.code(paul.email)))
    page = browser.get(space + SPACE + "/activite", timeout=10)
    assert page.status_code == 200
    rows = re.findall(r'<tr data-event="([a-z_]+)">(.*?)</tr>', page.text, re.S)
    kinds = [k for k, _ in rows]
    assert "login_succeeded" in kinds and "login_failed" in kinds and "code_sent" in kinds
    success = page_text(dict(rows)["login_succeeded"])
    assert "Site partenaire de test" in success and "code par mail" in success
    [ok] = events(jeanne, "login_succeeded")
    assert paris(ok.at) in success
    assert "mot de passe ou code incorrect (cas 4)" in page_text(dict(rows)["login_failed"])
    text = page_text(page.text)
    assert "Mutuelle de Paul" not in text
    assert len(rows) == len(fresh(select(AuditEvent).where(AuditEvent.user_id == jeanne.id)))


def test_activity_keeps_to_its_window_and_shows_the_method_read_from_the_event(space, browser, user, app):
    enter(space, browser, user)
    db.session.add(AuditEvent(at=utcnow() - timedelta(days=31), event="password_changed", user_id=user.id))
    db.session.add(AuditEvent(at=utcnow() - timedelta(minutes=1), event="login_succeeded", user_id=user.id,
                              detail={"method": "app-code"}))
    db.session.add(AuditEvent(at=utcnow() - timedelta(minutes=2), event="login_succeeded", user_id=user.id,
                              detail={"method": "trusted-browser"}))
    db.session.commit()
    page = browser.get(space + SPACE + "/activite", timeout=10)
    text = page_text(page.text)
    assert "Mot de passe modifié" not in text  # 31 days ago
    assert "application d'authentification" in text and "navigateur de confiance" in text
    assert "Espace sécurité" in text  # the space's own login


# --- password ----------------------------------------------------------------------------------------

def test_password_change_ends_the_other_sessions_and_trusted_browsers_and_mails(space, new_browser, user, mailbox,
                                                                             new_journey):
    a = new_browser()
    trust(space, a, user, FIREFOX)
    other = new_journey()
    other.up_to_code_entry(user)
    other.callback(other.enter_code(other.code(user.email), remember=True))
    other_session = [s for s in live_sessions(user) if s.amr][-1]
    page = a.get(space + SPACE + "/mot-de-passe", timeout=10)
    assert "<title>Changer mon mot de passe" in page.text and "data-password-rules" in page.text
    before = len(mailbox.to(user.email))
    r = post(space, a, page, SPACE + "/mot-de-passe",
             {"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 303 and r.headers["Location"] == SPACE
    assert "Votre mot de passe a été modifié" in page_text(a.get(space + SPACE, timeout=10).text)
    changed = db.session.get(User, user.id)
    db.session.refresh(changed)
    assert changed.password_changed_at is not None
    assert len(live_sessions(user)) == 1  # this one only
    assert all(d.revoked_at is not None for d in fresh(select(TrustedDevice)))
    assert all(g.revoked_at is not None for g in fresh(select(Grant).where(Grant.sid == other_session.sid)))
    mail = mailbox.wait_for(user.email, after=before)
    assert "votre mot de passe a été modifié" in mail["Subject"]
    assert paris(changed.password_changed_at) in mail.text_body()
    assert [e.event for e in fresh(select(AuditEvent).where(AuditEvent.user_id == user.id,
                                                            AuditEvent.event.in_(("password_changed",
                                                                                  "trusted_device_revoked"))))] \
        == ["password_changed", "trusted_device_revoked"]
    # The other computer's session is over; the new password opens a login.
    assert other.browser.get(space + SPACE, allow_redirects=False, timeout=10).status_code == 303
    b = new_browser()
    enter(space, b, user, password=NEW_PASSWORD)


def test_password_change_checks_the_rules_on_the_server_and_changes_nothing(space, browser, user):
    page = enter(space, browser, user, path="/mot-de-passe")
    for new, confirm, field, words in [
        ("court", "court", "password", "Comporter entre 8 et 50 caractères"),
        (f"Ab1{user.nir}", f"Ab1{user.nir}", "password", "Ne pas contenir votre numéro de sécurité sociale"),
        (NEW_PASSWORD, NEW_PASSWORD + "x", "confirm", "La confirmation est différente"),
    ]:
        r = post(space, browser, page, SPACE + "/mot-de-passe", {"current": PASSWORD, "password": new,
                                                                  "confirm": confirm})
        assert r.status_code == 303 and r.headers["Location"] == SPACE + "/mot-de-passe"
        page = browser.get(space + SPACE + "/mot-de-passe", timeout=10)
        assert page.text.count('aria-invalid="true"') == 1
        assert re.search(rf'aria-describedby="[^"]*{field}-erreur"[^>]*aria-invalid="true"[^>]*id="{field}"', page.text)
        assert "<title>Erreur : Changer mon mot de passe" in page.text and words in page_text(page.text)
    assert events(user, "password_changed") == [] and password_limit(user.nir).count == 0


def test_wrong_current_password_is_case_4_then_case_6_locks_it(space, browser, user, app):
    page = enter(space, browser, user, path="/mot-de-passe")
    limit = app.config["IDP_MAX_PASSWORD_FAILURES"]
    for i in range(limit):
        r = post(space, browser, page, SPACE + "/mot-de-passe",
                 {"current": "Mauvais-1234", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
        assert r.status_code == 303
        page = browser.get(space + SPACE + "/mot-de-passe", timeout=10)
    text = page_text(page.text)
    row = password_limit(user.nir)
    assert row.count == limit and near(row.locked_until, utcnow() + timedelta(minutes=5))
    assert "Trop de mots de passe incorrects" in text
    # Locked: the right password is not even checked now, and the login's NIR is locked too (case 6).
    r = post(space, browser, page, SPACE + "/mot-de-passe",
             {"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert "Trop de mots de passe incorrects" in page_text(browser.get(space + SPACE + "/mot-de-passe").text)
    assert events(user, "password_changed") == []
    cases = [(e.case, (e.detail or {}).get("refused")) for e in events(user, "password_change_refused")]
    assert cases == [(4, None)] * (limit - 1) + [(6, None), (6, True)]
    assert len(events(user, "lock_set")) == 1


def test_live_check_of_the_rules_needs_the_session_and_keeps_the_nir_on_the_server(space, browser, user):
    page = enter(space, browser, user, path="/mot-de-passe")
    r = post(space, browser, page, SPACE + "/mot-de-passe/verifier", {"password": "Ab1" + user.nir})
    assert r.status_code == 200 and r.json()["broken"] == ["password_rule_nir"]
    stranger = Browser()
    r = stranger.post(space + SPACE + "/mot-de-passe/verifier", data={"password": "x"}, allow_redirects=False)
    assert r.status_code in (303, 400)


# --- e-mail address -------------------------------------------------------------------------------

def test_email_change_takes_effect_only_when_the_new_address_is_validated(space, browser, user, mailbox):
    old = user.email
    page = enter(space, browser, user, path="/adresse-mail")
    before = len(mailbox.to(old))
    r = post(space, browser, page, SPACE + "/adresse-mail", {"email": "jeanne.nouvelle@exemple.fr"})
    assert r.status_code == 303 and r.headers["Location"] == SPACE + "/adresse-mail"
    page = browser.get(space + SPACE + "/adresse-mail", timeout=10)
    assert "Un lien de validation a été envoyé à jeanne.nouvelle@exemple.fr" in page_text(page.text)
    link_mail = mailbox.wait_for("jeanne.nouvelle@exemple.fr")
    link = re.search(r"(http://\S+/mon-compte/securite/adresse-mail/valider#(\S+))", link_mail.text_body())
    token = link.group(2)
    [row] = fresh(select(EmailValidation))
    assert row.email == "jeanne.nouvelle@exemple.fr" and token not in row.token_hash
    notice = mailbox.wait_for(old, after=before)
    assert "demande de changement d'adresse mail" in notice["Subject"]
    assert paris(row.created_at) in notice.text_body() and "j***@exemple.fr" in notice.text_body()
    assert fresh(select(User.email).where(User.id == user.id)) == [old]  # not yet
    # The link, opened in any browser: its page, then the click.
    other = Browser()
    opened = other.get(space + SPACE + "/adresse-mail/valider", timeout=10)
    assert token not in opened.text
    r = other.post(space + SPACE + "/adresse-mail/valider", data={"csrf_token": csrf_token(opened.text),
                                                                 "token": token}, allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == SPACE + "/adresse-mail/validee"
    assert fresh(select(User.email).where(User.id == user.id)) == ["jeanne.nouvelle@exemple.fr"]
    # Single use.
    r = other.post(space + SPACE + "/adresse-mail/valider", data={"csrf_token": csrf_token(opened.text),
                                                                 "token": token}, allow_redirects=False)
    assert r.headers["Location"] == SPACE + "/adresse-mail/lien-invalide"
    assert "<title>Erreur :" in other.get(space + r.headers["Location"]).text
    assert [e.event for e in fresh(select(AuditEvent).where(AuditEvent.event.like("email_%")))] == \
        ["email_change_requested", "email_changed"]


def test_email_change_refuses_a_bad_or_identical_address_and_sends_nothing(space, browser, user, mailbox):
    page = enter(space, browser, user, path="/adresse-mail")
    sent = len(mailbox.messages) if hasattr(mailbox, "messages") else None
    for value, words in [("pas-une-adresse", "nom@exemple.fr"), (user.email.upper(), "déjà celle de votre compte")]:
        r = post(space, browser, page, SPACE + "/adresse-mail", {"email": value})
        assert r.status_code == 303
        page = browser.get(space + SPACE + "/adresse-mail", timeout=10)
        assert 'aria-invalid="true"' in page.text and words in page_text(page.text)
        assert "<title>Erreur :" in page.text
    assert fresh(select(EmailValidation)) == [] and events(user, "email_change_requested") == []
    if sent is not None:
        assert len(mailbox.messages) == sent


def test_an_expired_email_change_link_changes_nothing(space, browser, user, mailbox):
    page = enter(space, browser, user, path="/adresse-mail")
    post(space, browser, page, SPACE + "/adresse-mail", {"email": "ailleurs@exemple.fr"})
    token = re.search(r"valider#(\S+)", mailbox.wait_for("ailleurs@exemple.fr").text_body()).group(1)
    move(update(EmailValidation).values(expires_at=utcnow()))
    opened = browser.get(space + SPACE + "/adresse-mail/valider", timeout=10)
    r = browser.post(space + SPACE + "/adresse-mail/valider", data={"csrf_token": csrf_token(opened.text),
                                                                   "token": token}, allow_redirects=False)
    assert r.headers["Location"] == SPACE + "/adresse-mail/lien-invalide"
    assert fresh(select(User.email).where(User.id == user.id)) == [user.email]


# --- « Se déconnecter de tous les appareils » ------------------------------------------------------

def test_log_out_everywhere_ends_every_session_and_grant(space, browser, user, new_journey):
    other = new_journey()
    other.up_to_code_entry(user)
    other.callback(other.enter_code(other.code(user.email)))
    index = enter(space, browser, user)
    assert len(live_sessions(user)) == 2
    r = post(space, browser, index, SPACE + "/deconnexion-partout")
    assert r.status_code == 303 and r.headers["Location"] == SPACE + "/deconnecte"
    assert "idp_session=;" in r.headers.get("Set-Cookie", "").replace('"', "")
    assert live_sessions(user) == []
    assert all(g.revoked_at is not None for g in fresh(select(Grant)))
    [row] = events(user, "sessions_ended")
    assert row.detail["by"] == "person" and row.detail["sessions"] == 2
    assert browser.get(space + SPACE, allow_redirects=False, timeout=10).status_code == 303
    assert other.browser.get(space + SPACE, allow_redirects=False, timeout=10).status_code == 303


# --- links to the space ---------------------------------------------------------------------------

def test_the_help_page_links_to_the_space(space, browser):
    assert f'href="{SPACE}"' in browser.get(space + "/connexion/aide", timeout=10).text


# --- idp users sessions NIR [--end] (the 3646 agents) ---------------------------------------------

def test_agent_command_lists_then_ends_sessions_and_trusted_browsers_audited(space, new_browser, user, app,
                                                                             make_user):
    a, b = new_browser(), new_browser()
    trust(space, a, user, FIREFOX)
    enter(space, b, user)
    someone = make_user()
    enter(space, new_browser(), someone)
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["users", "sessions", user.nir])
    assert listed.exit_code == 0, listed.output
    assert "Sessions: 2" in listed.output and "Trusted browsers: 1" in listed.output
    assert "Firefox 121, Windows 10" in listed.output
    assert [e.detail for e in events(user, "sessions_viewed")] == [{"by": "cli"}]
    ended = runner.invoke(args=["users", "sessions", user.nir, "--end"])
    assert ended.exit_code == 0, ended.output
    assert "Ended 2 session(s)" in ended.output and "1 trusted browser(s)" in ended.output
    assert live_sessions(user) == [] and len(live_sessions(someone)) == 1  # only that person's
    assert all(d.revoked_at is not None for d in fresh(select(TrustedDevice).where(TrustedDevice.user_id == user.id)))
    [row] = events(user, "sessions_ended")
    assert row.detail["by"] == "cli"
    assert events(user, "trusted_device_revoked")[0].detail == {"count": 1, "reason": "cli"}
    # The browser that was trusted is asked for a code again.
    a.get(space + SPACE, allow_redirects=False, timeout=10)
    page = a.get(space + "/connexion", timeout=10)
    a.submit(space + "/connexion", page.text, {"nir": user.nir, "password": PASSWORD})
    assert step_of(a.get(space + "/connexion", timeout=10)) == "code-request"


def test_agent_command_refuses_a_bad_or_unknown_nir(app):
    runner = app.test_cli_runner()
    assert "NIR must have 15 characters" in runner.invoke(args=["users", "sessions", "123"]).output
    unknown = runner.invoke(args=["users", "sessions", "185057800608491"])
    assert unknown.exit_code != 0 and "No account with this NIR." in unknown.output
    assert fresh(select(AuditEvent)) == []


# --- The limit on wrong current passwords, served by several workers ----------------------------------

def test_parallel_wrong_current_passwords_on_several_workers_are_checked_no_more_than_the_rule(served, user, app,
                                                                                               mailbox):
    browser = Browser(mailbox)
    enter(served.url, browser, user, path="/mot-de-passe")
    page = browser.get(served.url + SPACE + "/mot-de-passe", timeout=10)
    served.reset_checks()
    from login_pages import race

    posts = []
    for _ in range(20):
        b = Browser(mailbox)
        b.cookies.update(browser.cookies)
        posts.append((b, served.url + SPACE + "/mot-de-passe",
                      {"csrf_token": csrf_token(page.text), "current": "Mauvais-1234", "password": NEW_PASSWORD,
                       "confirm": NEW_PASSWORD}))
    responses = race(posts)
    assert all(r.status_code == 303 for r in responses), [r.status_code for r in responses]
    limit = app.config["IDP_MAX_PASSWORD_FAILURES"]
    assert served.checks("password") == limit  # Argon2 ran for the attempts the rule allows, not 20
    row = password_limit(user.nir)
    assert row.count == limit and row.locked_until is not None
    refused = [(e.case, (e.detail or {}).get("refused")) for e in events(user, "password_change_refused")]
    assert sorted(refused, key=str) == sorted([(4, None)] * (limit - 1) + [(6, None)] + [(6, True)] * (20 - limit),
                                              key=str)
    assert events(user, "password_changed") == []


def test_email_change_links_are_limited_per_person_and_the_block_is_said(space, browser, user, mailbox, app):
    page = enter(space, browser, user, path="/adresse-mail")
    quota = app.config["IDP_ACCOUNT_EMAIL_CHANGE_QUOTA"]
    for i in range(quota + 1):
        post(space, browser, page, SPACE + "/adresse-mail", {"email": f"essai{i}@exemple.fr"})
        page = browser.get(space + SPACE + "/adresse-mail", timeout=10)
    assert 'data-error="email_quota"' in page.text and "<title>Erreur :" in page.text
    assert len(events(user, "email_change_requested")) == quota
    [blocked] = events(user, "quota_blocked")
    assert blocked.detail["kind"] == "email_change"
    assert mailbox.to(f"essai{quota}@exemple.fr") == []
    # A separate count: the login's codes are not blocked by it.
    other = Browser(mailbox)
    enter(space, other, user)


def test_parallel_email_change_requests_on_several_workers_send_no_more_links_than_the_quota(served, user, app,
                                                                                            mailbox):
    browser = Browser(mailbox)
    enter(served.url, browser, user, path="/adresse-mail")
    page = browser.get(served.url + SPACE + "/adresse-mail", timeout=10)
    from login_pages import race

    posts = []
    for i in range(12):
        b = Browser(mailbox)
        b.cookies.update(browser.cookies)
        posts.append((b, served.url + SPACE + "/adresse-mail",
                      {"csrf_token": csrf_token(page.text), "email": f"course{i}@exemple.fr"}))
    responses = race(posts)
    assert all(r.status_code == 303 for r in responses), [r.status_code for r in responses]
    quota = app.config["IDP_ACCOUNT_EMAIL_CHANGE_QUOTA"]
    assert len(events(user, "email_change_requested")) == quota
    assert sum(len(mailbox.to(f"course{i}@exemple.fr")) for i in range(12)) == quota
    assert len(events(user, "quota_blocked")) == 1


def test_only_the_newest_email_change_link_works(space, browser, user, mailbox):
    page = enter(space, browser, user, path="/adresse-mail")
    post(space, browser, page, SPACE + "/adresse-mail", {"email": "premiere@exemple.fr"})
    first = re.search(r"valider#(\S+)", mailbox.wait_for("premiere@exemple.fr").text_body()).group(1)
    page = browser.get(space + SPACE + "/adresse-mail", timeout=10)
    post(space, browser, page, SPACE + "/adresse-mail", {"email": "seconde@exemple.fr"})
    mailbox.wait_for("seconde@exemple.fr")
    opened = browser.get(space + SPACE + "/adresse-mail/valider", timeout=10)
    r = browser.post(space + SPACE + "/adresse-mail/valider", data={"csrf_token": csrf_token(opened.text),
                                                                   "token": first}, allow_redirects=False)
    assert r.headers["Location"] == SPACE + "/adresse-mail/lien-invalide"
    assert fresh(select(User.email).where(User.id == user.id)) == [user.email]


def test_the_logout_page_links_to_the_space(app):
    from flask import render_template

    with app.test_request_context("/"):
        assert f'href="{SPACE}"' in render_template("logout/done.html", client=None)
