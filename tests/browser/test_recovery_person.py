"""The forgotten-password pages walked through as a person does (issue 11), in Chromium.

* Post/Redirect/Get: after an error of step 2 or step 5, back, forward and reload
  show a page, never Chromium's « Confirmer le nouvel envoi du formulaire »
  (net::ERR_CACHE_MISS, which Playwright raises as an error); the CAPTCHA stays
  single use (a reload shows a new series).
* Errors tied to their fields: ``aria-invalid``, ``aria-describedby`` to the
  message, the summary's link to the field, the title beginning « Erreur : ».
* Step 2's birth date: JJ/MM/AAAA or JJMMAAAA, said by its hint, no numeric keypad
  without « / », ``autocomplete="bday"``, a clear message for an impossible date.
* At 360 px: no horizontal scroll, tap targets of 44 px, axe-core clean.
* No dead end: during a login, every page leads back to it or to the partner site.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .axe import violations
from .person import Person

ANSWER = "HX7K4M"
NEW_PASSWORD = "Nouveau-Depart-2025"
BORN = "12/05/1985"
START = "/mot-de-passe-oublie"
LINK_RE = re.compile(r"(https?://[^\s\"<>#]+/mot-de-passe-oublie/nouveau#[A-Za-z0-9_-]+)")
PHONE_360 = {"width": 360, "height": 740}

#: The tap targets of the recovery pages that stand on their own: buttons, the CAPTCHA's controls,
#: links on their own line (« Je n'ai pas reçu le mail », the ways back), the footer's links.
TARGETS = """() => Array.from(document.querySelectorAll(
    'main button, .captcha-actions > *, .help-link a, .back-link a, .site-footer a, a.button'))
  .filter(e => e.getClientRects().length)
  .map(e => { const r = e.getBoundingClientRect();
              return {what: e.tagName + ' ' + (e.innerText || '').trim().slice(0, 40), height: r.height,
                      right: r.right} })"""


@pytest.fixture
def settings():
    return {"CAPTCHA_TEST_ANSWER": ANSWER}


def fill_step2(page, nir: str, born: str = BORN, answer: str = ANSWER) -> None:
    page.get_by_label("Numéro de sécurité sociale", exact=True).fill(nir)
    page.get_by_label("Date de naissance").fill(born)
    page.get_by_label("Caractères de l'image").fill(answer)


def shown_by_get(response) -> None:
    """The page the browser shows came from a GET: back, forward and reload never post again."""
    assert response is not None and response.request.method == "GET", response and response.request.method


def tied_to_its_field(page, field_id: str, message: str) -> None:
    """The gov.uk error pattern (RGAA 11.10, 11.11) on one field."""
    field = page.locator(f"#{field_id}")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator(f"#{field_id}-erreur")).to_contain_text(message)
    assert f"{field_id}-erreur" in (field.get_attribute("aria-describedby") or "").split()
    summary_link = page.get_by_role("alert").locator(f"a[href='#{field_id}']")
    expect(summary_link).to_contain_text(message)
    assert page.title().startswith("Erreur : "), page.title()
    summary_link.click()
    expect(field).to_be_focused()
    assert page.url.endswith(f"#{field_id}")
    page.go_back()  # the summary link's fragment: a step in the history of the same document
    assert "#" not in page.url


def reset_link(mailbox, user, after: int = 0) -> str:
    return LINK_RE.search(mailbox.wait_for(user.email, after=after).text_body()).group(1)


def test_step2_error_then_back_forward_and_reload_show_pages(live_server, make_user, page, mailbox):
    user = make_user()
    jeanne = Person(page, mailbox, user)
    jeanne.open(live_server.url + START)
    assert not page.title().startswith("Erreur")
    first_series = page.locator("img.captcha-image").get_attribute("src")

    fill_step2(page, user.nir, answer="AAAAAA")
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Recevoir le mail", exact=True).click()
    shown_by_get(nav.value)
    assert page.url == live_server.url + START  # nothing typed in the URL
    tied_to_its_field(page, "captcha", "ne correspondent pas à la série proposée")
    expect(page.get_by_label("Numéro de sécurité sociale", exact=True)).to_have_value(user.nir)  # kept
    expect(page.get_by_label("Date de naissance")).to_have_value(BORN)
    error_series = page.locator("img.captcha-image").get_attribute("src")
    assert error_series != first_series  # a new series after a wrong one

    shown_by_get(page.go_back())  # would raise net::ERR_CACHE_MISS on a POST's answer
    jeanne.step("recovery-identity")
    shown_by_get(page.go_forward())
    jeanne.step("recovery-identity")
    shown_by_get(page.reload())
    jeanne.step("recovery-identity")
    # The error was shown once; the page shown again is the form, with yet another series.
    expect(page.get_by_role("alert")).to_have_count(0)
    assert page.locator("img.captcha-image").get_attribute("src") not in (first_series, error_series)

    fill_step2(page, user.nir)
    jeanne.submit("Recevoir le mail")
    jeanne.step("recovery-mail-sent")
    shown_by_get(page.reload())
    jeanne.step("recovery-mail-sent")
    shown_by_get(page.go_back())
    jeanne.step("recovery-identity")
    assert len(mailbox.to(user.email)) <= 1  # nothing was posted again


def test_step2_birth_date_hint_keyboard_and_impossible_date(live_server, make_user, page, mailbox):
    user = make_user()
    page.goto(live_server.url + START)
    born = page.get_by_label("Date de naissance")
    expect(born).to_have_attribute("autocomplete", "bday")
    assert born.get_attribute("inputmode") in (None, "text")  # a keyboard with « / »
    hint = page.locator("#birth_date-aide")
    expect(hint).to_contain_text("JJ/MM/AAAA ou JJMMAAAA")
    assert "birth_date-aide" in born.get_attribute("aria-describedby").split()

    fill_step2(page, user.nir, born="31/02/1985")
    Person(page, mailbox, user).submit("Recevoir le mail")
    tied_to_its_field(page, "birth_date", "Cette date n'existe pas : vérifiez le jour")
    assert "birth_date-aide" in born.get_attribute("aria-describedby").split()

    # JJMMAAAA, typed on any keypad, is accepted.
    born.fill("12051985")
    page.get_by_label("Caractères de l'image").fill(ANSWER)
    Person(page, mailbox, user).submit("Recevoir le mail")
    Person(page, mailbox, user).step("recovery-mail-sent")
    mailbox.wait_for(user.email)


def test_step5_error_then_back_forward_and_reload_show_pages(live_server, make_user, page, mailbox):
    user = make_user()
    jeanne = Person(page, mailbox, user)
    page.goto(live_server.url + START)
    fill_step2(page, user.nir)
    jeanne.submit("Recevoir le mail")
    link = reset_link(mailbox, user)

    page.goto(link)  # its script posts the token, then the 303 leads to step 5
    jeanne.step("recovery-password")
    assert "#" not in page.url and "nouveau/mot-de-passe" in page.url
    page.get_by_label("Nouveau mot de passe", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirmation du nouveau mot de passe").fill(NEW_PASSWORD + "x")
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Valider le nouveau mot de passe").click()
    shown_by_get(nav.value)
    tied_to_its_field(page, "confirm", "La confirmation est différente du nouveau mot de passe")
    expect(page.get_by_label("Nouveau mot de passe", exact=True)).to_have_value("")  # never kept

    shown_by_get(page.reload())
    jeanne.step("recovery-password")
    expect(page.get_by_role("alert")).to_have_count(0)
    shown_by_get(page.go_back())
    shown_by_get(page.go_forward())
    jeanne.step("recovery-password")

    page.get_by_label("Nouveau mot de passe", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirmation du nouveau mot de passe").fill(NEW_PASSWORD)
    jeanne.submit("Valider le nouveau mot de passe")
    jeanne.step("recovery-done")
    shown_by_get(page.reload())
    jeanne.step("recovery-done")
    # Back to step 5: the link is used, the page says so (a GET, no form posted again).
    shown_by_get(page.go_back())
    jeanne.step("recovery-link-invalid")
    assert page.title().startswith("Erreur : ")
    mailbox.wait_for(user.email, after=1)  # the change's mail, once
    assert len(mailbox.to(user.email)) == 2


def test_case1_and_case2_pages_reload_and_go_back(live_server, make_user, page, mailbox, app):
    nobody_mail = make_user(email_verified=False)
    jeanne = Person(page, mailbox, nobody_mail)
    page.goto(live_server.url + START)
    fill_step2(page, nobody_mail.nir)
    jeanne.submit("Recevoir le mail")
    jeanne.step("recovery-no-email")  # case 1
    assert page.title().startswith("Erreur : ")
    shown_by_get(page.reload())
    jeanne.step("recovery-no-email")
    shown_by_get(page.go_back())
    jeanne.step("recovery-identity")

    user = make_user()
    for _ in range(app.config["IDP_RESET_MAIL_QUOTA"] + 1):
        page.goto(live_server.url + START)
        fill_step2(page, user.nir)
        jeanne.submit("Recevoir le mail")
    jeanne.step("recovery-blocked")  # case 2
    assert page.title().startswith("Erreur : ")
    shown_by_get(page.reload())
    jeanne.step("recovery-blocked")
    expect(page.get_by_role("alert")).to_contain_text("Vous pourrez faire une nouvelle demande le")


def at_360(page, name: str) -> None:
    """No horizontal scroll, 44 px tap targets, axe-core clean."""
    width, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert inner == 360 and width <= inner, f"{name}: horizontal scroll ({width} px in a {inner} px window)"
    for target in page.evaluate(TARGETS):
        assert target["height"] >= 44, f"{name}: {target['what']} is {target['height']} px high"
        assert target["right"] <= inner, f"{name}: {target['what']} goes past the right edge"
    found = violations(page)
    assert not found, f"{name}: axe-core violations: {found}"


def test_every_recovery_page_at_360px(live_server, make_user, new_context, mailbox):
    page = new_context(viewport=PHONE_360, is_mobile=True, has_touch=True).new_page()
    user = make_user()
    jeanne = Person(page, mailbox, user)
    page.goto(live_server.url + START)
    at_360(page, "step 2")
    expect(page.get_by_role("button", name="Écouter les caractères")).to_be_visible()  # its 44 px checked above
    fill_step2(page, user.nir, born="31/02/1985", answer="AAAAAA")
    jeanne.submit("Recevoir le mail")
    at_360(page, "step 2 with errors")
    fill_step2(page, user.nir)
    jeanne.submit("Recevoir le mail")
    jeanne.step("recovery-mail-sent")
    at_360(page, "step 3")
    page.get_by_role("link", name="Je n'ai pas reçu le mail").first.click()
    jeanne.step("recovery-help")
    at_360(page, "« Je n'ai pas reçu le mail »")
    link = reset_link(mailbox, user)
    page.goto(link)
    jeanne.step("recovery-password")
    at_360(page, "step 5")
    page.get_by_label("Nouveau mot de passe", exact=True).fill("court")
    page.get_by_label("Confirmation du nouveau mot de passe").fill("court")
    jeanne.submit("Valider le nouveau mot de passe")
    at_360(page, "step 5 with errors")
    page.get_by_label("Nouveau mot de passe", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirmation du nouveau mot de passe").fill(NEW_PASSWORD)
    jeanne.submit("Valider le nouveau mot de passe")
    jeanne.step("recovery-done")
    at_360(page, "step 6")
    page.goto(link)
    jeanne.step("recovery-link-invalid")
    at_360(page, "link no longer valid")
    unvalidated = make_user(email_verified=False)
    page.goto(live_server.url + START)
    fill_step2(page, unvalidated.nir)
    jeanne.submit("Recevoir le mail")
    jeanne.step("recovery-no-email")
    at_360(page, "case 1")


@pytest.mark.parametrize("where", ["step 2", "step 2 with errors", "step 3", "help"])
def test_during_a_login_every_recovery_page_leads_back_to_it_or_to_the_partner(rp, make_user, page, mailbox,
                                                                                where):
    user = make_user()
    jeanne = Person(page, mailbox, user)
    jeanne.open(rp.authorization_url())
    jeanne.step("password")
    page.get_by_role("link", name="Mot de passe oublié ?").click()
    jeanne.step("recovery-identity")
    if where == "step 2 with errors":
        fill_step2(page, user.nir, answer="AAAAAA")
        jeanne.submit("Recevoir le mail")
    elif where in ("step 3", "help"):
        fill_step2(page, user.nir)
        jeanne.submit("Recevoir le mail")
        jeanne.step("recovery-mail-sent")
        if where == "help":
            page.get_by_role("link", name="Je n'ai pas reçu le mail").first.click()
            jeanne.step("recovery-help")
    expect(page.get_by_role("link", name="Revenir à la connexion")).to_have_attribute("href", "/connexion")
    jeanne.submit("Annuler et revenir au site partenaire")
    callback = jeanne.callback(rp)
    assert "error=access_denied" in callback and "state=" in callback and "iss=" in callback
