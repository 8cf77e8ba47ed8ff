"""Issue 11: the login pages as a person meets them, over real HTTP.

No dead end (« Annuler et revenir au site partenaire » on every page of a login in
progress, the partner receiving the fitting OAuth error with ``state`` and ``iss``),
the partner named from its registration, errors tied to their fields (RGAA 11.10,
the gov.uk error summary), case 4's « À noter », the code's end time, the step
counter, and Post/Redirect/Get: every form of the journey answers 303 to a GET that
shows its outcome, with the status a machine reads, on reload too.
"""

from __future__ import annotations

import re

import pytest
import requests
from sqlalchemy import update

from conftest import csrf_token
from idp.models import Client, LoginFlow
from login_pages import CASE4_PASSWORD, Journey, flows, move, page_text, paris_hm, step_of
from oidc_flows import query, without_query

WRONG = "Mauvais-1234"
CANCEL = "Annuler et revenir au site partenaire"
MAIL_DOWN = "smtp://127.0.0.1:9?timeout=2"
PARTNER = "Connexion demandée par : Site partenaire de test"


def wrong_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def reach(where: str, journey: Journey, make_user, app):
    """The page ``where`` of a login in progress (the seed's step or case), as the browser shows it."""
    if where == "step0":
        return journey.start()
    if where in ("case1", "case7", "case8"):
        fields = {"case1": {"email_verified": False}, "case7": {"affiliation": "none"},
                  "case8": {"affiliation": "pending"}}[where]
        person = make_user(**fields)
        journey.start()
        return journey.password(person)
    person = make_user()
    if where == "case6":
        journey.start()
        for _ in range(app.config["IDP_MAX_PASSWORD_FAILURES"]):
            page = journey.password(person, password=WRONG)
        return page
    if where == "step1":
        journey.start()
        return journey.password(person)
    if where == "mail-failure":
        journey.start()
        journey.password(person)
        app.config["IDP_MAIL_URL"] = MAIL_DOWN
        return journey.request_code()
    page = journey.up_to_code_entry(person)
    if where == "step3":
        return page
    if where == "case3":
        for _ in range(app.config["IDP_CODE_QUOTA"]):
            page = journey.resend()
        return page
    if where == "case5":
        code = journey.code(person.email)
        for _ in range(app.config["IDP_MAX_CODE_FAILURES"]):
            page = journey.enter_code(wrong_code(code))
        return page
    raise AssertionError(where)


PAGES = {  # where: (the status the page answers, what it says, the error the partner receives on « Annuler »)
    "step0": (200, "Je me connecte à mon compte ameli", "access_denied"),
    "step1": (200, "Un code de sécurité va vous être envoyé", "access_denied"),
    "step3": (200, "Saisissez le code de sécurité reçu par mail", "access_denied"),
    "case1": (403, "Votre adresse mail doit être validée", "access_denied"),
    "case3": (429, "Vous avez demandé trop de codes de sécurité", "access_denied"),
    "case5": (429, "Votre compte est bloqué pendant quelques minutes", "access_denied"),
    "case6": (429, "La connexion est bloquée pendant quelques minutes", "access_denied"),
    "case7": (403, "Connexion impossible", "access_denied"),
    "case8": (403, "Connexion impossible pour le moment", "access_denied"),
    "mail-failure": (503, "Le mail n'a pas pu être envoyé", "temporarily_unavailable"),
}


@pytest.mark.parametrize("where", list(PAGES))
def test_every_page_of_a_login_in_progress_names_the_partner_and_cancels_to_it(where, journey, make_user, app):
    status, says, error = PAGES[where]
    page = reach(where, journey, make_user, app)
    assert page.status_code == status and says in page_text(page.text), (page.status_code, page_text(page.text)[:300])
    text = page_text(page.text)
    assert PARTNER in text
    assert f">{CANCEL}</button>" in page.text and 'action="/connexion/annuler"' in page.text
    form = re.search(r'<form method="post" action="/connexion/annuler"[^>]*>(.*?)</form>', page.text, re.S).group(1)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)

    r = journey.browser.post(journey.url + "/connexion/annuler", data={"csrf_token": token},
                             allow_redirects=False, timeout=10)
    assert r.status_code == 303
    assert without_query(r.headers["Location"]) == journey.params["redirect_uri"]
    got = query(r.headers["Location"])
    assert got["error"] == error and got["state"] == journey.params["state"] and got["iss"] == journey.url
    assert "code" not in got and r.headers["Location"].count("iss=") == 1
    # The login is over: back on its pages, a clear page.
    assert flows()[0].completed_at is not None


def test_partner_logo_and_link_only_when_registered(journey, user, app):
    page = journey.start()
    assert "<img" not in page.text.split('data-partner', 1)[1].split("</p>", 1)[0]
    assert "partner-logo" not in page.text
    assert "img-src 'self' data:;" in page.headers["Content-Security-Policy"]

    move(update(Client).where(Client.id == journey.client.id).values(
        logo_uri="https://partenaire.exemple.fr/logo.png", client_uri="https://partenaire.exemple.fr/"))
    page = journey.get()
    assert '<img class="partner-logo" src="https://partenaire.exemple.fr/logo.png" alt="">' in page.text
    assert re.search(r'<a href="https://partenaire.exemple.fr/"[^>]*>Site partenaire de test</a>', page.text)
    assert "img-src 'self' data: https://partenaire.exemple.fr;" in page.headers["Content-Security-Policy"]


def test_partner_name_comes_from_the_registration_not_from_the_request(journey, user):
    page = journey.start(client_name="Faux site", logo_uri="https://pirate.exemple/logo.png")
    assert PARTNER in page_text(page.text)
    assert "Faux site" not in page.text and "pirate.exemple" not in page.text


def test_step_counter_1_2_3_maps_the_seed_steps_0_1_3(journey, user):
    assert "Étape 1 sur 3" in page_text(journey.start().text)
    assert "Étape 2 sur 3" in page_text(journey.password(user).text)
    assert "Étape 3 sur 3" in page_text(journey.request_code().text)
    assert "Étape 0" not in journey.page.text


def test_step0_offers_show_password_with_the_new_password_pages_control(journey):
    page = journey.start()
    assert re.search(r'<div class="checkbox show-password" data-reveal-password hidden>\s*'
                     r'<input type="checkbox" id="afficher-mot-de-passe">\s*'
                     r'<label for="afficher-mot-de-passe">Afficher le mot de passe</label>', page.text)


def test_case4_wrong_password_is_tied_to_its_field_with_the_block_warning(journey, user):
    journey.start()
    r = journey.password(user, password=WRONG, follow=False)
    assert r.status_code == 303 and r.headers["Location"] == "/connexion" and r.headers["X-Login-Outcome"] == "401"
    page = journey.get()
    assert page.status_code == 401 and step_of(page) == "password"
    assert page.text.count("<title>Erreur : Je me connecte") == 1
    assert re.search(r'<input aria-describedby="password-erreur" aria-invalid="true"[^>]*id="password"', page.text)
    assert re.search(r'<p class="field-error" id="password-erreur">' + re.escape(CASE4_PASSWORD) + "</p>",
                     page.text.replace("&#39;", "'"))
    assert re.search(r'<a href="#password">Mot de passe : ', page.text)
    text = page_text(page.text)
    assert ("À noter : si vous saisissez plusieurs fois de mauvaises informations de connexion, "
            "votre compte sera bloqué pendant quelques minutes.") in text
    # The NIR typed is given back (kept on the flow, never in the URL); the password never.
    assert f'value="{user.nir}"' in page.text and WRONG not in page.text
    assert user.nir not in r.headers["Location"]
    # Reload: the same page, the same status, nothing posted again.
    again = journey.get()
    assert again.status_code == 401 and CASE4_PASSWORD in page_text(again.text)


def test_case4_validation_errors_also_answer_303_and_link_to_their_field(journey):
    journey.start()
    r = journey.post({"nir": "", "password": ""}, follow=False)
    assert r.status_code == 303 and r.headers["X-Login-Outcome"] == "400"
    page = journey.get()
    assert page.status_code == 400 and "<title>Erreur : " in page.text
    assert '<a href="#nir">' in page.text and '<a href="#password">' in page.text
    assert re.search(r'aria-invalid="true"[^>]*id="nir"', page.text)


def test_case4_wrong_code_and_case2_expired_code_are_tied_to_the_code_field(journey, user):
    journey.up_to_code_entry(user)
    code = journey.code(user.email)
    page = journey.enter_code(wrong_code(code))
    assert page.status_code == 401 and "<title>Erreur : " in page.text
    assert re.search(r'<input aria-describedby="code-aide code-erreur" aria-invalid="true"[^>]*id="code"', page.text)
    assert '<a href="#code">Code de sécurité : Le code de sécurité saisi est incorrect.' in page.text
    assert "À noter : après plusieurs erreurs, votre compte sera bloqué pendant quelques minutes." in \
        page_text(page.text)
    move(update(LoginFlow).values(code_expires_at=LoginFlow.created_at))
    page = journey.enter_code(code)
    assert page.status_code == 400 and '<a href="#code">Code de sécurité : Ce code de sécurité a expiré' in page.text
    assert re.search(r'aria-invalid="true"[^>]*id="code"', page.text)


def test_step3_page_gives_the_codes_end_time_as_the_mail_does(journey, user):
    page = journey.up_to_code_entry(user)
    end = flows()[0].code_expires_at
    assert f"valable 15 minutes, jusqu'à {paris_hm(end)} (heure de Paris)" in page_text(page.text)


def test_case3_offers_to_enter_the_pending_code(journey, user, app):
    journey.up_to_code_entry(user)
    for _ in range(app.config["IDP_CODE_QUOTA"]):
        page = journey.resend()
    assert page.status_code == 429 and "Vous avez demandé trop de codes" in page_text(page.text)
    assert ">Saisir le code reçu</button>" in page.text
    back = journey.post({}, follow=False)  # « Saisir le code reçu »
    assert back.status_code == 303
    page = journey.get()
    assert page.status_code == 200 and step_of(page) == "code"
    journey.callback(journey.enter_code(journey.code(user.email)))


def test_case3_at_step1_without_a_pending_code_offers_no_code_entry(journey, user, app, settings):
    app.config["IDP_CODE_QUOTA"] = 0
    try:
        journey.start()
        journey.password(user)
        page = journey.request_code()
    finally:
        app.config["IDP_CODE_QUOTA"] = 5
    assert page.status_code == 429 and "Saisir le code reçu" not in page.text


@pytest.mark.parametrize("where", ["step0-wrong", "step1", "step3-wrong", "step3-resend", "case1-resend",
                                   "case6", "mail-failure"])
def test_every_login_post_answers_303_and_the_get_shows_the_outcome(where, journey, make_user, app):
    """Post/Redirect/Get: no login form is answered by a page, so back and reload never re-post it."""
    person = make_user(email_verified=where != "case1-resend")
    journey.start()
    if where.startswith("step0") or where == "case6":
        for _ in range(app.config["IDP_MAX_PASSWORD_FAILURES"] if where == "case6" else 1):
            r = journey.password(person, password=WRONG, follow=False)
        expected = 429 if where == "case6" else 401
    elif where == "case1-resend":
        journey.password(person)
        r = journey.post({"action": "resend-validation"}, follow=False)
        expected = 403
    else:
        journey.password(person)
        if where == "mail-failure":
            app.config["IDP_MAIL_URL"] = MAIL_DOWN
        r = journey.request_code(follow=False)
        expected = 503 if where == "mail-failure" else None
        if where.startswith("step3"):
            journey.get()
            data = {"action": "resend"} if where == "step3-resend" else {"code": "000000"}
            r = journey.post(data, follow=False)
            expected = 200 if where == "step3-resend" else 401
    assert r.status_code == 303 and r.headers["Location"] == "/connexion", (r.status_code, r.text[:200])
    first, reload = journey.get(), journey.get()
    if expected is not None:
        assert r.headers["X-Login-Outcome"] == str(expected)
        assert first.status_code == reload.status_code == expected
    assert page_text(first.text) == page_text(reload.text)


def test_step0_expired_form_is_said_for_the_whole_form_not_tied_to_a_field(journey, user):
    journey.start()
    r = journey.browser.post(journey.step_url, data={"csrf_token": "expire", "nir": user.nir, "password": WRONG},
                             allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["X-Login-Outcome"] == "400"
    page = journey.get()
    assert page.status_code == 400 and "Ce formulaire a expiré. Rechargez la page et recommencez." in page.text
    assert 'aria-invalid="true"' not in page.text and "<title>Erreur : " in page.text
