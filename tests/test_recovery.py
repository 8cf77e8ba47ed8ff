"""The forgotten-password journey of the seed (ameli-forgot-password), over real HTTP.

Steps 2 to 6 and cases 1 and 2; mails go through the real SMTP server of the
tests and the link is read from them. The CAPTCHA answer is fixed by the test
setting ``CAPTCHA_TEST_ANSWER``, except in the tests of the real series.
"""

from __future__ import annotations

import io
import re
import threading
from html import unescape
import wave
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, update

from conftest import PASSWORD, Browser, csrf_token, make_nir
from idp import create_app, crypto, limits
from idp.extensions import db
from idp.login import policy
from idp.models import BrowserSession, Grant, Limit, LoginFlow, TrustedDevice, User, utcnow
from idp.models.recovery import CaptchaChallenge, PasswordReset
from idp.recovery import ConfigurationError, captcha, links
from idp.recovery.password_policy import SPECIALS
from idp.recovery.voice import ALPHABET
from login_pages import alert_text, fresh, move, near, page_text, paris
from oidc_flows import OP, auth_params
from recovery_pages import (
    ANSWER,
    BORN,
    CHANGED_SUBJECT,
    NEW_PASSWORD,
    RESET_SUBJECT,
    SENT,
    START,
    handle_of,
    split_link,
)


@pytest.fixture
def settings():
    return {"CAPTCHA_TEST_ANSWER": ANSWER}


def user_row(user_id: int) -> User:
    return fresh(select(User).where(User.id == user_id))[0]


def resets(user_id: int) -> list[PasswordReset]:
    return fresh(select(PasswordReset).where(PasswordReset.user_id == user_id).order_by(PasswordReset.id))


def no_new_mail(mailbox, email: str, before: int = 0, wait: float = 0.5) -> bool:
    try:
        mailbox.wait_for(email, timeout=wait, after=before)
    except AssertionError:
        return True
    return False


# --- Entry -------------------------------------------------------------------------------------------

def test_the_login_page_links_to_the_journey(live_server, browser, make_client):
    client, _ = make_client()
    op = OP(live_server.url, browser)
    r = op.authorize(auth_params(client)[0])
    page = browser.get(op.absolute(r.headers["Location"]), timeout=10)
    assert f'href="{START}">Mot de passe oublié ?</a>' in page.text


def test_step2_page_fields_captcha_and_button(recovery):
    page = recovery.start()
    html = unescape(page.text)
    for label in ("Numéro de sécurité sociale", "Date de naissance", "Caractères de l'image"):
        assert f">{label}</label>" in html
    assert ">Recevoir le mail</button>" in html
    assert 'value="new-captcha"' in html and "Nouvelle série de caractères" in html
    handle = handle_of(html)
    # RGAA 1.4: the image says what it is for; RGAA 1.5: a sound alternative, a link (a button with script).
    assert f'src="{START}/captcha/{handle}/image.png"' in html
    assert 'alt="Image de sécurité (CAPTCHA) : une série de 6 lettres et chiffres à recopier' in html
    assert f'href="{START}/captcha/{handle}/son.wav"' in html and "Écouter les caractères" in html
    assert "valable 5 minutes" in page_text(html)
    assert "<script>" not in html and "onclick" not in html  # CSP: no inline script
    assert "/static/js/recovery.js" in html


# --- Steps 2 to 6: the whole journey ------------------------------------------------------------------

def test_whole_journey_mail_link_new_password_confirmation_and_login(recovery, live_server, make_user, mailbox,
                                                                      browser, make_client):
    user = make_user()
    r = recovery.ask(user.nir)
    assert r.posted.status_code == 303 and r.posted.headers["Location"] == SENT and r.status_code == 200
    page = browser.get(live_server.url + SENT, timeout=10)
    text = page_text(page.text)
    assert "Consultez votre messagerie" in text and "Renouveler mon mot de passe" in text
    assert f'href="{START}/aide">Je n\'ai pas reçu le mail</a>' in unescape(page.text)

    # Step 4: the mail.
    mail = mailbox.wait_for(user.email)
    assert mail["Subject"] == RESET_SUBJECT
    assert mail["From"].addresses[0].display_name == "Votre Assurance Maladie"
    assert mail.get_content_type() == "multipart/alternative"
    link = recovery.link(user.email)
    assert link.startswith(live_server.url) and link in mail.html_body()
    assert ">Renouveler mon mot de passe</a>" in mail.html_body()
    [reset] = resets(user.id)
    token = split_link(link)[1]
    assert reset.token_hash == crypto.keyed_hash("password-reset", token) and token not in reset.token_hash
    assert near(reset.expires_at, utcnow() + timedelta(minutes=30))
    body = " ".join(mail.text_body().split())
    assert f"Ce lien est valable 30 minutes, jusqu'au {paris(reset.expires_at)} (heure de Paris)" in body

    # Step 5: the form and its rules.
    form = recovery.open(link)
    assert form.status_code == 200
    text = page_text(form.text)
    for rule in ("Comporter entre 8 et 50 caractères", "Contenir des lettres latines minuscules et majuscules",
                 "Contenir un chiffre ou un caractère spécial", "Ne contenir que des caractères autorisés",
                 "Ne pas contenir votre numéro de sécurité sociale", "Ne pas contenir votre date de naissance"):
        assert rule in text
    assert f"Caractères autorisés : les lettres latines sans accent (a à z, A à Z), les chiffres (0 à 9) et les " \
           f"caractères spéciaux suivants : {SPECIALS} ." in text
    assert ">Nouveau mot de passe</label>" in form.text and ">Valider le nouveau mot de passe</button>" in form.text
    assert user.nir not in form.text and "1985" not in form.text  # personal data stay on the server
    assert resets(user.id)[0].used_at is None  # opening the link consumed nothing

    # Step 6: confirmation page and mail.
    done = recovery.set_password(link, page=form)
    assert done.status_code == 200
    assert "Votre nouveau mot de passe est enregistré" in page_text(done.text)
    assert "depuis le site partenaire" in page_text(done.text)  # no login in progress in this browser
    changed = mailbox.wait_for(user.email, after=1)
    assert changed["Subject"] == CHANGED_SUBJECT
    row = user_row(user.id)
    assert near(row.password_changed_at, utcnow())
    assert f"modifié le {paris(row.password_changed_at)} (heure de Paris)" in " ".join(changed.text_body().split())
    assert paris(row.password_changed_at) in page_text(changed.html_body())
    assert crypto.verify_password(row.password_hash, NEW_PASSWORD)
    assert not crypto.verify_password(row.password_hash, PASSWORD)
    assert resets(user.id)[0].used_at is not None

    # Logging in with the new password works, the old one no longer does.
    client, _ = make_client()
    op = OP(live_server.url, Browser(mailbox))
    start = op.authorize(auth_params(client)[0])
    location = op.absolute(start.headers["Location"])
    assert op.finish_login(location, row, password=PASSWORD).status_code == 401
    done = op.finish_login(location, row, password=NEW_PASSWORD)
    assert done.status_code in (302, 303) and "code=" in done.headers["Location"]


def test_the_change_revokes_devices_grants_sessions_and_lifts_the_password_lock(recovery, make_user, make_client):
    user = make_user()
    client, _ = make_client()
    db.session.add_all([
        TrustedDevice(user_id=user.id, token_hash="d" * 64, expires_at=utcnow() + timedelta(days=30)),
        Grant(client_id=client.id, user_id=user.id, scope="openid"),
        BrowserSession(sid_hash="s" * 64, user_id=user.id, auth_time=0, amr=["pwd"]),
        # Somebody who knew the old password, at the code step.
        LoginFlow(flow_hash="f" * 64, client_id=client.id, authorization_params={}, user_id=user.id,
                  passed=["password"], expires_at=utcnow() + timedelta(minutes=20)),
    ])
    db.session.commit()
    for _ in range(3):
        limits.hit(policy.password_failures(), policy.nir_key(user.nir))
    assert limits.locked_until(policy.password_failures(), policy.nir_key(user.nir)) is not None
    other = make_user()  # somebody else keeps everything
    db.session.add(Grant(client_id=client.id, user_id=other.id, scope="openid"))
    db.session.commit()

    link = recovery.request_link(user)
    assert recovery.set_password(link).status_code == 200

    assert all(d.revoked_at for d in fresh(select(TrustedDevice).where(TrustedDevice.user_id == user.id)))
    assert all(g.revoked_at for g in fresh(select(Grant).where(Grant.user_id == user.id)))
    assert all(s.ended_at for s in fresh(select(BrowserSession).where(BrowserSession.user_id == user.id)))
    assert all(f.expires_at <= utcnow() for f in fresh(select(LoginFlow).where(LoginFlow.user_id == user.id)))
    assert fresh(select(Grant.revoked_at).where(Grant.user_id == other.id)) == [None]
    [lock] = fresh(select(Limit).where(Limit.kind == "password", Limit.key == policy.nir_key(user.nir)))
    assert lock.locked_until is None and lock.count == 0


def test_after_the_change_the_login_in_progress_is_offered(recovery, live_server, make_user, make_client, browser):
    """Came from a relying party (a login flow cookie is live): the confirmation links back to /connexion."""
    client, _ = make_client()
    user = make_user()
    op = OP(live_server.url, browser)
    r = op.authorize(auth_params(client)[0])
    assert r.status_code == 302 and r.headers["Location"].endswith("/connexion")
    page = recovery.start()
    assert 'href="/connexion">Revenir à la connexion</a>' in page.text
    link = recovery.request_link(user)
    done = recovery.set_password(link)
    assert done.status_code == 200
    assert 'href="/connexion">Me connecter avec mon nouveau mot de passe</a>' in done.text
    result = browser.finish_login(live_server.url + "/connexion", user_row(user.id), password=NEW_PASSWORD)
    assert result.status_code in (302, 303) and "code=" in result.headers["Location"]


# --- Post/Redirect/Get (issue 11): what the GET shows, kept in the signed session -----------------------

def session_of(app, response) -> dict:
    """The Flask session a response set (its signed cookie), decoded as the server reads it."""
    value = response.cookies.get(app.config["SESSION_COOKIE_NAME"])
    assert value, "the response set no session cookie"
    return app.session_interface.get_signing_serializer(app).loads(value)


def test_step2_errors_are_shown_once_and_the_cookie_holds_the_typed_identity_sealed(recovery, make_user, app):
    user = make_user()
    r = recovery.ask(user.nir, birth_date="12051985", answer="FAUX")
    assert r.posted.status_code == 303 and r.posted.headers["Location"] == START
    assert r.status_code == 400 and 'aria-invalid="true"' in r.text and f'value="{user.nir}"' in r.text
    assert "<title>Erreur : Mot de passe oublié" in r.text
    kept = session_of(app, r.posted)
    cookie = repr(kept)
    assert user.nir not in cookie and "12051985" not in cookie and "1985" not in cookie
    assert crypto.unseal("recovery-typed-identity", kept["rcv_identity"]["typed"]) == f"{user.nir}\n12051985"
    assert crypto.unseal("another-purpose", kept["rcv_identity"]["typed"]) is None
    # Shown once: the reload is the form afresh, with a new series.
    again = recovery.browser.get(recovery.url + START, timeout=10)
    assert again.status_code == 200 and "aria-invalid" not in again.text and user.nir not in again.text
    assert "<title>Mot de passe oublié" in again.text and handle_of(again.text) != handle_of(r.text)


def test_step5_keeps_the_link_opened_by_its_row_and_never_the_password(recovery, make_user, app):
    user = make_user()
    link = recovery.request_link(user)
    page = recovery.open(link)
    token = split_link(link)[1]
    assert page.posted.headers["Location"] == "/mot-de-passe-oublie/nouveau/mot-de-passe"
    assert token not in page.text  # the link's secret is neither in step 5's page
    kept = session_of(app, page.posted)
    assert kept["rcv_reset"] == resets(user.id)[0].id and token not in repr(kept)  # nor in the cookie
    r = recovery.set_password(link, "Court-1", page=page)
    assert r.status_code == 400 and "Court-1" not in repr(session_of(app, r.posted)) and "Court-1" not in r.text
    # Another browser cannot use the row's id: the session is signed.
    other = Browser()
    forged = app.session_interface.get_signing_serializer(app).dumps({"rcv_reset": resets(user.id)[0].id})[:-2] + "xx"
    other.cookies.set(app.config["SESSION_COOKIE_NAME"], forged)
    assert other.get(recovery.url + "/mot-de-passe-oublie/nouveau/mot-de-passe", timeout=10).status_code == 400


def test_outcome_pages_without_a_submission_lead_to_the_form(recovery):
    for path in ("/envoi-impossible", "/demandes-bloquees", "/service-indisponible", "/refus", "/nouveau/enregistre"):
        r = recovery.browser.get(recovery.url + START + path, allow_redirects=False, timeout=10)
        assert r.status_code == 303 and r.headers["Location"] == START, path


# --- No enumeration ------------------------------------------------------------------------------------

def test_unknown_nir_or_wrong_birth_date_get_the_page_of_a_sent_mail(recovery, new_recovery, make_user, mailbox):
    user = make_user()
    sent = recovery.ask(user.nir)
    link = recovery.link(user.email)
    unknown = new_recovery().ask(make_nir())
    wrong_date = new_recovery().ask(user.nir, birth_date="13/05/1985")
    for r in (unknown, wrong_date):
        assert r.posted.status_code == sent.posted.status_code == 303
        assert r.posted.headers["Location"] == sent.posted.headers["Location"] == SENT
        assert r.posted.text == sent.posted.text and r.text == sent.text
    assert no_new_mail(mailbox, user.email, before=1)
    # The wrong birth date did not revoke the person's link.
    assert [r.revoked_at for r in resets(user.id)] == [None]
    assert recovery.set_password(link).status_code == 200


def test_case2_quota_is_counted_per_nir_typed_account_or_not(new_recovery, make_user):
    """The same block page for a NIR without an account: the quota says nothing either."""
    user = make_user()
    nobody = make_nir()
    pages = {}
    for nir in (user.nir, nobody):
        for _ in range(3):
            r = new_recovery().ask(nir)
            assert r.posted.headers["Location"] == SENT
        pages[nir] = new_recovery().ask(nir)
    for nir, r in pages.items():
        assert r.status_code == 429, page_text(r.text)[:300]
        assert 'data-step="recovery-blocked"' in r.text
        [row] = fresh(select(Limit).where(Limit.kind == "reset-mail", Limit.key == policy.nir_key(nir)))
        assert near(row.locked_until, utcnow() + timedelta(minutes=15))
        assert f"Vous pourrez faire une nouvelle demande le {paris(row.locked_until)} (heure de Paris)" in alert_text(r.text)
    assert pages[user.nir].text.replace(user.nir, "-") == pages[nobody].text.replace(nobody, "-")


# --- Cases 1 and 2 --------------------------------------------------------------------------------------

def test_case1_unvalidated_email_cannot_receive_the_mail(recovery, make_user, mailbox):
    user = make_user(email_verified=False)
    r = recovery.ask(user.nir)
    assert r.status_code == 403 and 'data-step="recovery-no-email"' in r.text
    text = page_text(r.text)
    assert "Nous ne pouvons pas vous envoyer le mail" in text
    assert "L'adresse mail de votre compte ameli n'a pas été validée" in text
    assert "mail de validation" in text and "3646" in text
    assert resets(user.id) == [] and no_new_mail(mailbox, user.email)


def test_case1_no_email_at_all(recovery, make_user):
    user = make_user(email=None, email_verified=False)
    r = recovery.ask(user.nir)
    assert r.status_code == 403
    assert "Aucune adresse mail n'est enregistrée dans votre compte ameli" in page_text(r.text)
    assert "3646" in page_text(r.text) and resets(user.id) == []


def test_case2_too_many_mails_block_the_service_for_a_short_time(recovery, new_recovery, make_user, mailbox):
    user = make_user()
    for _ in range(3):
        new_recovery().request_link(user)
    blocked = recovery.ask(user.nir)
    assert blocked.status_code == 429
    assert "Trop de demandes de renouvellement" in page_text(blocked.text)
    assert "bloqué pour ce compte pendant une courte période" in page_text(blocked.text)
    [row] = fresh(select(Limit).where(Limit.kind == "reset-mail", Limit.key == policy.nir_key(user.nir)))
    until = row.locked_until
    # During the block: not counted, not extended, no mail.
    again = new_recovery().ask(user.nir)
    assert again.status_code == 429
    assert fresh(select(Limit.locked_until).where(Limit.kind == "reset-mail")) == [until]
    assert len(mailbox.to(user.email)) == 3
    # Once the block is over, a mail can be asked again.
    move(update(Limit).where(Limit.kind == "reset-mail").values(locked_until=utcnow() - timedelta(seconds=1)))
    new_recovery().request_link(user)


# --- Step 4: the link ------------------------------------------------------------------------------------

def test_only_the_newest_link_works(recovery, new_recovery, make_user):
    user = make_user()
    first = recovery.request_link(user)
    second = new_recovery().request_link(user)
    r = recovery.open(first)
    assert r.status_code == 400 and "Ce lien n'est plus valable" in page_text(r.text)
    assert "un mail plus récent vous a été envoyé" in page_text(r.text)
    assert f'href="{START}">Recommencer la démarche</a>' in r.text
    assert recovery.set_password(second).status_code == 200


def test_an_older_link_cannot_be_used_even_if_its_row_was_not_revoked(recovery, new_recovery, make_user):
    """A race between two requests left two live rows: the newest wins anyway (NOT EXISTS newer)."""
    user = make_user()
    first = recovery.request_link(user)
    page = recovery.open(first)
    assert page.status_code == 200
    new_recovery().request_link(user)
    move(update(PasswordReset).values(revoked_at=None))
    r = recovery.set_password(first, page=page)
    assert r.status_code == 400 and "Ce lien n'est plus valable" in page_text(r.text)
    assert crypto.verify_password(user_row(user.id).password_hash, PASSWORD)


def test_consuming_checks_in_one_statement_that_no_newer_link_exists(recovery, new_recovery, make_user):
    """What a request holding an old link sees if a newer one is sent between its lookup and its UPDATE."""
    from idp.recovery import links

    user = make_user()
    first = recovery.request_link(user)
    old = links.find_live(split_link(first)[1])
    assert old is not None
    new_recovery().request_link(user)
    move(update(PasswordReset).values(revoked_at=None))
    assert links.consume(old) is False
    newest = resets(user.id)[-1]
    assert links.consume(newest) is True and links.consume(newest) is False
    db.session.rollback()


def test_an_expired_link_invites_to_start_again(recovery, make_user):
    user = make_user()
    link = recovery.request_link(user)
    page = recovery.open(link)
    move(update(PasswordReset).values(expires_at=utcnow() - timedelta(seconds=1)))
    for r in (recovery.open(link), recovery.set_password(link, page=page)):
        assert r.status_code == 400 and "Ce lien n'est plus valable" in page_text(r.text)
    assert crypto.verify_password(user_row(user.id).password_hash, PASSWORD)


def test_a_link_works_once(recovery, make_user):
    user = make_user()
    link = recovery.request_link(user)
    page = recovery.open(link)
    assert recovery.set_password(link, page=page).status_code == 200
    replay = recovery.set_password(link, password="Encore-Autre-2026", page=page)
    assert replay.status_code == 400 and "Ce lien n'est plus valable" in page_text(replay.text)
    assert recovery.open(link).status_code == 400
    assert crypto.verify_password(user_row(user.id).password_hash, NEW_PASSWORD)


@pytest.mark.parametrize("tamper", [lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), lambda t: t + "x",
                                    lambda t: t[:10], lambda t: "x" * 5000, lambda t: "%00%0d%0a"])
def test_a_tampered_link_is_refused(recovery, make_user, live_server, tamper):
    user = make_user()
    link = recovery.request_link(user)
    base, token = split_link(link)
    bad = f"{base}#{tamper(token)}"
    r = recovery.open(bad)
    assert r.status_code == 400 and "Ce lien n'est plus valable" in page_text(r.text)
    post = recovery.set_password(bad, page=recovery.start())
    assert post.status_code == 400 and "Ce lien n'est plus valable" in page_text(post.text)
    assert crypto.verify_password(user_row(user.id).password_hash, PASSWORD)


def test_parallel_submissions_of_one_link_change_the_password_once(recovery, make_user, live_server, mailbox):
    user = make_user()
    link = recovery.request_link(user)
    page = recovery.open(link)
    token = csrf_token(page.text)
    page_url = split_link(link)[0]
    cookies = recovery.browser.cookies.get_dict()  # the session holds the link opened: each POST follows its 303
    results: list[int] = []
    barrier = threading.Barrier(8)

    def submit(i: int) -> None:
        barrier.wait()
        r = requests.post(page_url, data={"csrf_token": token, "password": f"Parallele-{i}-Essai",
                                      "confirm": f"Parallele-{i}-Essai"}, cookies=cookies, timeout=30)
        results.append(r.status_code)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] + [400] * 7
    mailbox.wait_for(user.email, after=1)
    assert no_new_mail(mailbox, user.email, before=2)  # one notification


# --- Step 5: each rule, the confirmation, bad input -------------------------------------------------------

@pytest.mark.parametrize("password, rule", [
    ("Court-1", "Comporter entre 8 et 50 caractères"),
    ("Aa-" + "b" * 48, "Comporter entre 8 et 50 caractères"),
    ("tout-en-minuscules", "Contenir des lettres latines minuscules et majuscules"),
    ("TOUT-EN-MAJUSCULES", "Contenir des lettres latines minuscules et majuscules"),
    ("SansChiffreNiSigne", "Contenir un chiffre ou un caractère spécial"),
    ("Vacances Bretagne-1", "Ne contenir que des caractères autorisés"),
    ("Vacances-Brétagne-1", "Ne contenir que des caractères autorisés"),
    ("Nir-{nir}", "Ne pas contenir votre numéro de sécurité sociale"),
    ("Nir-{spaced}", "Ne pas contenir votre numéro de sécurité sociale"),
    ("Naissance-12/05/1985", "Ne pas contenir votre date de naissance"),
    ("Naissance-19850512", "Ne pas contenir votre date de naissance"),
    ("Naissance-120585", "Ne pas contenir votre date de naissance"),
])
def test_each_rule_is_checked_on_the_server(recovery, make_user, password, rule):
    user = make_user()
    spaced = " ".join([user.nir[0], user.nir[1:3], user.nir[3:5], user.nir[5:7], user.nir[7:10], user.nir[10:13],
                       user.nir[13:]])
    password = password.format(nir=user.nir, spaced=spaced.replace(" ", ""))
    link = recovery.request_link(user)
    r = recovery.set_password(link, password)
    assert r.status_code == 400
    errors = alert_text(r.text) + " " + page_text(r.text)
    assert "Le nouveau mot de passe ne respecte pas ces règles : " in errors and rule in errors
    assert f"{rule}" in page_text(r.text).split("Votre mot de passe doit :")[1]
    assert 'aria-invalid="true"' in r.text
    assert password not in r.text  # never echoed
    assert crypto.verify_password(user_row(user.id).password_hash, PASSWORD)
    assert resets(user.id)[0].used_at is None  # the link still works
    assert recovery.set_password(link).status_code == 200


def test_a_password_with_spaces_in_the_nir_is_refused_too(recovery, make_user):
    user = make_user()
    n = user.nir
    link = recovery.request_link(user)
    r = recovery.set_password(link, f"Xx-{n[0]} {n[1:3]} {n[3:5]} {n[5:7]} {n[7:10]} {n[10:13]} {n[13:]}")
    assert r.status_code == 400
    assert "Ne pas contenir votre numéro de sécurité sociale" in alert_text(r.text)


def test_disallowed_characters_are_named(recovery, make_user):
    user = make_user()
    link = recovery.request_link(user)
    r = recovery.set_password(link, "Été-à-Paris-2024")
    assert "Caractères non autorisés : « É », « é », « à »." in alert_text(r.text)


def test_a_different_confirmation_is_refused(recovery, make_user):
    user = make_user()
    link = recovery.request_link(user)
    r = recovery.set_password(link, NEW_PASSWORD, confirm=NEW_PASSWORD + "x")
    assert r.status_code == 400
    assert "La confirmation est différente du nouveau mot de passe" in alert_text(r.text)
    assert crypto.verify_password(user_row(user.id).password_hash, PASSWORD)


@pytest.mark.parametrize("data, message", [
    ({"password": "", "confirm": ""}, "Saisissez votre nouveau mot de passe."),
    ({"password": NEW_PASSWORD}, "Saisissez une seconde fois votre nouveau mot de passe."),
    ({"password": "A1-" + "x" * 300, "confirm": "A1-" + "x" * 300}, "Ce champ est trop long."),
])
def test_missing_or_oversized_password_fields(recovery, make_user, data, message):
    user = make_user()
    link = recovery.request_link(user)
    r = recovery.post_password(recovery.open(link), **data)
    assert r.status_code == 400 and message in alert_text(r.text)
    assert resets(user.id)[0].used_at is None


def test_the_new_password_form_needs_its_csrf_token(recovery, make_user):
    user = make_user()
    link = recovery.request_link(user)
    recovery.open(link)
    page_url = split_link(link)[0]
    r = recovery.browser.post(page_url, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, timeout=10)
    assert [h.status_code for h in r.history] == [303]
    assert r.status_code == 400 and "Ce formulaire a expiré" in page_text(r.text)
    assert resets(user.id)[0].used_at is None
    assert crypto.verify_password(user_row(user.id).password_hash, PASSWORD)


def test_the_live_check_tells_the_rules_the_page_cannot_check(recovery, make_user):
    user = make_user()
    link = recovery.request_link(user)
    page = recovery.open(link)
    url = split_link(link)[0] + "/verifier"  # for the link this browser opened (kept in its session)
    ask = lambda password, **kw: recovery.browser.post(  # noqa: E731
        url, data={"csrf_token": csrf_token(page.text), "password": password, **kw}, timeout=10)
    assert ask(f"Abc-{user.nir}").json() == {"broken": ["password_rule_nir"]}
    assert ask("Abc-12.05.1985").json() == {"broken": ["password_rule_birth_date"]}
    assert ask(NEW_PASSWORD).json() == {"broken": []}
    assert ask("x" * 300).status_code == 400
    no_csrf = recovery.browser.post(url, data={"password": "x"}, timeout=10)
    assert no_csrf.status_code == 400
    assert resets(user.id)[0].used_at is None  # checking consumes nothing
    recovery.set_password(link)
    assert ask("Abc").status_code == 404  # a used link answers nothing


# --- Step 2: bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("nir, birth_date, message", [
    ("", BORN, "Saisissez votre numéro de sécurité sociale."),
    ("185057800608492", BORN, "Le numéro de sécurité sociale comporte 15 caractères"),  # wrong key
    ("12345", BORN, "Le numéro de sécurité sociale comporte 15 caractères"),
    ("{nir}", "", "Saisissez votre date de naissance."),
    # Step 2's birth date (issue 11): an impossible date, a future one, a wrong form each say what to check.
    ("{nir}", "31/02/1985", "Cette date n'existe pas : vérifiez le jour (JJ, de 01 à 31 selon le mois) et le mois"),
    ("{nir}", "12/13/1985", "Cette date n'existe pas : vérifiez le jour (JJ, de 01 à 31 selon le mois) et le mois"),
    ("{nir}", "00051985", "Cette date n'existe pas"),
    ("{nir}", "12/05/2999", "La date de naissance ne peut pas être dans le futur : vérifiez l'année (AAAA)."),
    ("{nir}", "12/05/1885", "La date de naissance ne peut pas être avant 1890 : vérifiez l'année (AAAA)."),
    ("{nir}", "douze mai", "Saisissez la date de naissance au format JJ/MM/AAAA ou JJMMAAAA, par exemple 12/05/1985"),
    ("{nir}", "1205198", "Saisissez la date de naissance au format JJ/MM/AAAA ou JJMMAAAA"),
    ("1" * 5000, BORN, "Ce champ est trop long."),
    ("{nir}", "1" * 5000, "Ce champ est trop long."),
])
def test_malformed_identity_is_refused_with_a_message(recovery, make_user, mailbox, nir, birth_date, message):
    user = make_user()
    r = recovery.ask(nir.format(nir=user.nir), birth_date=birth_date)
    assert r.status_code == 400
    assert message in alert_text(r.text)
    assert 'aria-invalid="true"' in r.text
    assert fresh(select(Limit).where(Limit.kind == "reset-mail")) == []  # not counted
    assert resets(user.id) == [] and no_new_mail(mailbox, user.email, wait=0.2)


def test_birth_date_in_other_written_forms_is_accepted(recovery, new_recovery, make_user):
    user = make_user()
    for written in ("12-05-1985", "12.05.1985", "12051985", "1985-05-12", " 12 / 05 / 1985 "):
        r = new_recovery().ask(user.nir, birth_date=written)
        assert r.posted.headers["Location"] == SENT, (written, alert_text(r.text))
        move(update(Limit).values(count=0))


def test_an_oversized_request_gets_a_page_not_a_500(recovery):
    page = recovery.start()
    r = recovery.browser.post(recovery.url + START, data={"csrf_token": csrf_token(page.text), "nir": "1" * 70_000},
                              timeout=10)
    assert r.status_code == 413 and "Envoi trop volumineux" in page_text(r.text)


def test_step2_needs_its_csrf_token(recovery, make_user, mailbox):
    user = make_user()
    recovery.start()
    r = recovery.browser.post(recovery.url + START, data={"nir": user.nir, "birth_date": BORN, "captcha": ANSWER,
                                                          "captcha_handle": recovery.handle}, timeout=10)
    assert [h.status_code for h in r.history] == [303] and r.url == recovery.url + START  # back to the form
    assert r.status_code == 400 and "Ce formulaire a expiré" in alert_text(r.text)
    assert f'value="{user.nir}"' in r.text  # what was typed is kept
    assert captcha.live(recovery.handle)  # the series was not even consumed
    assert resets(user.id) == [] and no_new_mail(mailbox, user.email, wait=0.2)


# --- Step 2: the CAPTCHA ----------------------------------------------------------------------------------

def test_a_wrong_answer_gives_a_new_series_and_the_person_can_try_again(recovery, make_user):
    user = make_user()
    first = recovery.start()
    old = handle_of(first.text)
    r = recovery.ask(user.nir, answer="AAAAAA")
    assert r.status_code == 400
    assert "Les caractères saisis ne correspondent pas à la série proposée" in alert_text(r.text)
    assert handle_of(r.text) != old and not captcha.live(old)
    assert f'value="{user.nir}"' in r.text  # what was typed is kept (the CAPTCHA answer is not)
    assert recovery.ask(user.nir).posted.headers["Location"] == SENT


def test_a_missing_answer_is_asked_for(recovery, make_user):
    user = make_user()
    r = recovery.ask(user.nir, answer=None)
    assert r.status_code == 400 and "Recopiez les caractères de l'image" in alert_text(r.text)
    assert resets(user.id) == []


def test_a_replayed_series_is_refused(recovery, new_recovery, make_user):
    user = make_user()
    recovery.start()
    used = recovery.handle
    assert recovery.ask(user.nir).posted.headers["Location"] == SENT
    other = new_recovery()
    other.start()
    r = other.ask(user.nir, handle=used)
    assert r.status_code == 400 and "La série de caractères n'est plus valable" in alert_text(r.text)
    assert "elle dure 5 minutes et ne sert qu'une fois" in alert_text(r.text)


def test_an_expired_series_is_refused(recovery, make_user):
    user = make_user()
    recovery.start()
    move(update(CaptchaChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
    r = recovery.ask(user.nir)
    assert r.status_code == 400 and "La série de caractères n'est plus valable" in alert_text(r.text)
    assert recovery.ask(user.nir).posted.headers["Location"] == SENT  # the new series works


def test_a_series_lives_five_minutes(recovery):
    recovery.start()
    [row] = fresh(select(CaptchaChallenge))
    assert near(row.expires_at, utcnow() + timedelta(minutes=5))


def test_an_unknown_or_missing_handle_is_refused(recovery, make_user):
    user = make_user()
    for handle in ("inconnu", "x" * 500):
        r = recovery.ask(user.nir, handle=handle)
        assert r.status_code == 400 and "La série de caractères n'est plus valable" in alert_text(r.text)


def test_new_series_button_replaces_the_series_and_keeps_what_was_typed(recovery):
    recovery.start()
    old = recovery.handle
    posted = recovery.browser.submit(recovery.url + START, recovery.page.text,
                                     {"action": "new-captcha", "captcha_handle": old, "nir": "185057800608491",
                                      "birth_date": BORN})
    assert posted.status_code == 303 and posted.headers["Location"] == START  # what was typed: not in the URL
    r = recovery.browser.get(recovery.url + START, timeout=10)
    assert r.status_code == 200
    assert "Une nouvelle série de caractères est affichée." in page_text(r.text)
    assert handle_of(r.text) != old and not captcha.live(old)
    assert 'value="185057800608491"' in r.text and 'aria-invalid' not in r.text
    [answer_field] = re.findall(r'<input[^>]*name="captcha"[^>]*>', r.text)
    assert "autofocus" in answer_field and 'value=""' in answer_field


# --- The real series: image, sound, answer --------------------------------------------------------------

class TestRealSeries:
    @pytest.fixture
    def settings(self):
        return {}

    def test_image_is_a_png_and_sound_a_wav_of_the_series(self, recovery):
        page = recovery.start()
        handle = handle_of(page.text)
        series = captcha.series_for(handle)
        assert len(series) == 6 and set(series) <= set("AEFHJKMRTUWXY23456789")
        image = recovery.browser.get(f"{recovery.url}{START}/captcha/{handle}/image.png", timeout=10)
        assert image.status_code == 200 and image.headers["Content-Type"] == "image/png"
        assert image.content[:8] == b"\x89PNG\r\n\x1a\n"
        from PIL import Image

        assert Image.open(io.BytesIO(image.content)).size == (280, 80)
        sound = recovery.browser.get(f"{recovery.url}{START}/captcha/{handle}/son.wav", timeout=10)
        assert sound.status_code == 200 and sound.headers["Content-Type"].startswith("audio/wav")
        assert sound.content[:4] == b"RIFF" and sound.content[8:12] == b"WAVE"
        with wave.open(io.BytesIO(sound.content)) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
            seconds = w.getnframes() / w.getframerate()
        assert seconds > 0.3 * len(series) * 2  # read out twice
        assert sound.headers["Cache-Control"] == "no-store"

    def test_the_answer_is_the_series_and_is_stored_only_as_a_hash(self, recovery, make_user):
        user = make_user()
        recovery.start()
        series = captcha.series_for(recovery.handle)
        assert captcha.series_for(recovery.handle) == series  # the same image and sound each time
        [row] = fresh(select(CaptchaChallenge))
        stored = " ".join(str(getattr(row, c.name)) for c in CaptchaChallenge.__table__.columns)
        assert series not in stored and recovery.handle not in stored
        r = recovery.ask(user.nir, answer=series.lower()[:3] + " " + series[3:])
        assert r.posted.headers["Location"] == SENT

    def test_the_answer_of_another_series_is_wrong(self, recovery, new_recovery, make_user):
        user = make_user()
        other = new_recovery()
        other.start()
        recovery.start()
        r = recovery.ask(user.nir, answer=captcha.series_for(other.handle))
        assert r.status_code == 400

    def test_image_and_sound_of_a_used_or_unknown_series_are_not_found(self, recovery, make_user):
        user = make_user()
        recovery.start()
        handle = recovery.handle
        recovery.ask(user.nir, answer=captcha.series_for(handle))
        for path in (f"{handle}/image.png", f"{handle}/son.wav", "inconnu/image.png", "x" * 300 + "/son.wav"):
            assert recovery.browser.get(f"{recovery.url}{START}/captcha/{path}", timeout=10).status_code == 404


def test_the_test_answer_is_refused_outside_tests(tmp_path):
    base = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}", "SECRET_KEY": "x" * 32,
            "MAIL_OUTBOX_DIR": str(tmp_path), "CAPTCHA_TEST_ANSWER": ANSWER}
    with pytest.raises(ConfigurationError, match="IDP_TESTING"):
        create_app({**base, "TESTING": False})
    create_app({**base, "TESTING": True})


@pytest.mark.parametrize("answer, unsayable", [
    ("ABCDEF", "BCD"),      # letters left out of the alphabet (they sound alike)
    ("HX7K0M", "0"),        # a digit mistaken for O
    ("HX7-K4", "-"),
    ("hx7kém", "É"),
    ("   ", ""),            # nothing to copy at all
])
def test_a_test_answer_the_voice_cannot_say_is_refused_at_start_up(tmp_path, answer, unsayable):
    """It used to start, then answer 500 on the sound: there is no voice file for those characters."""
    base = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}", "SECRET_KEY": "x" * 32,
            "MAIL_OUTBOX_DIR": str(tmp_path), "TESTING": True}
    with pytest.raises(ConfigurationError, match="IDP_CAPTCHA_TEST_ANSWER") as refused:
        create_app({**base, "CAPTCHA_TEST_ANSWER": answer})
    message = str(refused.value)
    assert ALPHABET in message  # the characters allowed
    assert (f"cannot say {unsayable!r}" if unsayable else "no character") in message


def test_every_test_answer_accepted_at_start_up_can_be_heard(tmp_path):
    """The whole alphabet, in lower case and with spaces (as typed): accepted, and read out."""
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}", "SECRET_KEY": "x" * 32,
                      "MAIL_OUTBOX_DIR": str(tmp_path), "TESTING": True,
                      "CAPTCHA_TEST_ANSWER": " ".join(ALPHABET.lower())})
    with app.app_context():
        assert captcha.series_for("n-importe-laquelle") == ALPHABET
        with wave.open(io.BytesIO(captcha.audio("n-importe-laquelle")), "rb") as sound:
            assert sound.getnframes() > 0


# --- Per-IP limits ----------------------------------------------------------------------------------------

class TestRateLimits:
    @pytest.fixture
    def settings(self):
        return {"CAPTCHA_TEST_ANSWER": ANSWER, "RATE_LIMIT_CAPTCHA": "4 per minute", "RATE_LIMIT_RECOVERY": "2 per minute"}

    def test_captcha_images_and_sounds_are_limited_per_ip(self, recovery):
        recovery.start()
        url = f"{recovery.url}{START}/captcha/{recovery.handle}"
        statuses = [recovery.browser.get(f"{url}/image.png", timeout=10).status_code for _ in range(5)]
        assert statuses == [200] * 4 + [429]
        r = recovery.browser.get(f"{url}/image.png", timeout=10)
        assert "Trop de demandes" in page_text(r.text) and "Retry-After" in r.headers
        assert [recovery.browser.get(f"{url}/son.wav", timeout=10).status_code for _ in range(5)] == [200] * 4 + [429]

    def test_the_forms_are_limited_per_ip(self, recovery, make_user):
        user = make_user()
        assert recovery.ask(user.nir, answer="FAUX").status_code == 400
        assert recovery.ask(user.nir, answer="FAUX").status_code == 400
        r = recovery.ask(user.nir)  # refused too with a 303, to a page that says so
        assert r.status_code == 429 and "Trop de demandes" in page_text(r.text) and "Retry-After" in r.headers
        assert r.posted.headers["Location"] == START + "/refus"
        assert "<title>Erreur : Trop de demandes" in r.text
        assert resets(user.id) == []


def test_a_mail_server_down_is_told_and_charges_nothing(settings, recovery, make_user):
    """Issue 7 §2: 503 with the French page, no quota counted, no link written, account or not."""
    from flask import current_app

    user = make_user()
    current_app.config["IDP_MAIL_URL"] = "smtp://127.0.0.1:9?timeout=1"  # nobody listens there
    for nir_typed in (user.nir, make_nir()):
        recovery.start()
        r = recovery.ask(nir_typed)
        assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0
        text = page_text(r.text)
        assert "Le mail n'a pas pu être envoyé" in text and "Réessayez dans quelques minutes" in text
        assert "Rien n'a été décompté" in text
    assert fresh(select(Limit).where(Limit.kind == "reset-mail")) == []
    assert resets(user.id) == []


def test_help_page_has_the_checklist_of_the_seed(recovery):
    r = recovery.browser.get(recovery.url + START + "/aide", timeout=10)
    text = page_text(r.text)
    assert r.status_code == 200 and "Je n'ai pas reçu le mail" in text
    for words in ("adresse mail", "courriers indésirables (spams)", "autre adresse", "Outlook", "antivirus",
                  "mail le plus récent", "« Votre compte ameli – renouveler mon mot de passe »",
                  "« Votre Assurance Maladie »", "supprimé automatiquement"):
        assert words in text, words


def test_per_ip_limits_hook_the_recovery_pages_only(app, web):
    """Flask-Limiter runs on the forgotten-password pages it limits, and costs nothing elsewhere.

    Its hooks are moved to the recovery blueprint (``idp.recovery.ratelimit``): the
    limited page still gets its headers, the protocol endpoints and the login pages
    none, and no app-wide hook of the limiter is left.
    """
    limiter = app.extensions["idp_limiter"]
    app_wide = [*app.before_request_funcs[None], *app.after_request_funcs[None], *app.teardown_request_funcs[None]]
    assert not [h for h in app_wide if limiter in (getattr(h, "__self__", None), *getattr(h, "args", ()))]
    assert "X-RateLimit-Limit" in web.get("/mot-de-passe-oublie").headers
    for path in ("/.well-known/openid-configuration", "/jwks.json", "/connexion"):
        assert "X-RateLimit-Limit" not in web.get(path).headers, path
    assert "X-RateLimit-Limit" not in web.post("/token", data={"grant_type": "client_credentials"}).headers


def test_wait_for_jobs_returns_once_the_queued_mail_jobs_are_done():
    """What the tests rely on before emptying the tables between two tests (see ``conftest.app``)."""
    done = threading.Event()
    release = threading.Event()
    links.send_later(lambda: (release.wait(5), done.set()), delay=0.01)
    assert links.wait_for_jobs(0.2) is False  # still running: reported, not waited for forever
    release.set()
    assert links.wait_for_jobs(5) is True and done.is_set()
