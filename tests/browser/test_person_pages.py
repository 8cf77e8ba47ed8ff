"""Issue 11 in Chromium, at 1280 px and at 360 px: the login pages as a person walks them.

No dead end (« Annuler et revenir au site partenaire » lands on the partner with the
fitting error, ``state`` and ``iss``), the partner named on every step, the step
counter, « Afficher le mot de passe », 44 px tap targets, the code's end time, case 3's
« Saisir le code reçu », and Post/Redirect/Get: after an error, back, forward and reload
show a page (never Chromium's ERR_CACHE_MISS « Confirmer le nouvel envoi du formulaire »)
and never post a form again.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from .conftest import DESKTOP
from .person import Person

PHONE_360 = {"width": 360, "height": 740}
WRONG = "Pas-le-bon-2024"


@pytest.fixture(params=[DESKTOP, PHONE_360], ids=["desktop", "360px"])
def viewport(request):
    return request.param


def posts_of(page) -> list[str]:
    """Every POST the page sends from now on (the list grows as the test goes)."""
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    return sent


def partner_line(page):
    return page.locator("[data-partner]")


def test_step0_error_then_back_forward_and_reload_never_repost(rp, make_user, page, mailbox):
    jeanne = Person(page, mailbox, make_user())
    jeanne.open(rp.authorization_url())
    jeanne.give_password(password=WRONG)
    expect(page.get_by_role("alert")).to_contain_text("mot de passe incorrect")
    assert page.title().startswith("Erreur : ")
    sent = posts_of(page)

    page.go_back()
    expect(page.get_by_role("heading", level=1)).to_have_text("Je me connecte à mon compte ameli")
    assert "ERR_CACHE_MISS" not in page.content()
    page.go_forward()
    expect(page.get_by_role("heading", level=1)).to_have_text("Je me connecte à mon compte ameli")
    response = page.reload()
    assert response is not None and response.request.method == "GET" and response.status == 401
    expect(page.get_by_role("alert")).to_contain_text("mot de passe incorrect")
    assert "ERR_CACHE_MISS" not in page.content()
    assert sent == []  # nothing posted again

    # The login goes on from there.
    jeanne.give_password()
    jeanne.step("code-request")


def test_step3_wrong_code_then_back_and_reload_never_repost(rp, make_user, page, mailbox):
    jeanne = Person(page, mailbox, make_user())
    jeanne.open(rp.authorization_url())
    jeanne.give_password()
    code = jeanne.request_code()
    jeanne.enter_code("000000" if code != "000000" else "111111")
    expect(page.get_by_role("alert")).to_contain_text("Le code de sécurité saisi est incorrect")
    sent = posts_of(page)
    page.go_back()
    assert "ERR_CACHE_MISS" not in page.content()
    expect(page.locator("[data-step]")).to_have_count(1)
    page.go_forward()
    response = page.reload()
    assert response.request.method == "GET"
    expect(page.get_by_role("heading", level=1)).to_have_text("Saisissez le code de sécurité reçu par mail")
    assert sent == []
    jeanne.enter_code(code)
    jeanne.callback(rp)


def test_steps_name_the_partner_count_1_2_3_and_show_the_codes_end(rp, make_user, page, mailbox):
    jeanne = Person(page, mailbox, make_user())
    jeanne.open(rp.authorization_url())
    for step, counter in (("password", "Étape 1 sur 3"), ("code-request", "Étape 2 sur 3"), ("code", "Étape 3 sur 3")):
        jeanne.step(step)
        expect(page.locator(".step")).to_have_text(counter)
        expect(partner_line(page)).to_have_text("Connexion demandée par : Site partenaire de test")
        expect(page.get_by_role("button", name="Annuler et revenir au site partenaire")).to_be_visible()
        if step == "password":
            jeanne.give_password()
        elif step == "code-request":
            code = jeanne.request_code()
    expect(page.locator("[data-code-end]")).to_have_text(re.compile(r"^\d{1,2} h \d{2}$"))
    jeanne.enter_code(code)
    jeanne.callback(rp)


def test_step0_show_password_and_44px_tap_targets(rp, make_user, page, mailbox):
    jeanne = Person(page, mailbox, make_user())
    jeanne.open(rp.authorization_url())
    password = page.get_by_label("Mot de passe", exact=True)
    password.fill("Secret-2024")
    expect(password).to_have_attribute("type", "password")
    page.get_by_label("Afficher le mot de passe").check()
    expect(password).to_have_attribute("type", "text")
    page.get_by_label("Afficher le mot de passe").uncheck()
    expect(password).to_have_attribute("type", "password")
    targets = [page.get_by_role("link", name="Questions fréquentes sur la connexion (nouvelle fenêtre)"),
               page.get_by_role("button", name="Annuler et revenir au site partenaire")]
    forgot = page.get_by_role("link", name="Mot de passe oublié ?")
    if forgot.count():
        targets.append(forgot)
    for target in targets:
        box = target.bounding_box()
        assert box["height"] >= 44, (target, box)
    forgot_url = forgot.get_attribute("href") if forgot.count() else None
    if forgot_url:  # the recovery pages' « Je n'ai pas reçu le mail »
        page.goto(page.url.split("/connexion")[0] + forgot_url)
        received = page.get_by_role("link", name="Je n'ai pas reçu le mail")
        if received.count():
            assert received.bounding_box()["height"] >= 44
    # Nothing scrolls sideways at this width.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("affiliation, error", [("none", "access_denied"), ("pending", "access_denied")],
                         ids=["case7", "case8"])
def test_cancel_from_a_case_page_lands_on_the_partner_with_the_error(rp, make_user, page, mailbox, affiliation,
                                                                      error):
    jeanne = Person(page, mailbox, make_user(affiliation=affiliation))
    url = rp.authorization_url()
    state = parse_qs(urlsplit(url).query)["state"][0]
    jeanne.open(url)
    jeanne.give_password()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Connexion impossible")
    expect(partner_line(page)).to_contain_text("Site partenaire de test")
    jeanne.submit("Annuler et revenir au site partenaire")
    got = parse_qs(urlsplit(jeanne.callback(rp)).query)
    assert got["error"] == [error] and got["state"] == [state] and "iss" in got and "code" not in got


@pytest.mark.parametrize("settings", [{"CODE_QUOTA": 1}], ids=["quota-1"])
def test_case3_offers_to_enter_the_code_received(rp, make_user, page, mailbox):
    jeanne = Person(page, mailbox, make_user())
    jeanne.open(rp.authorization_url())
    jeanne.give_password()
    code = jeanne.request_code()
    jeanne.submit("Recevoir un nouveau code de sécurité")
    jeanne.heading("Vous avez demandé trop de codes de sécurité")
    expect(page.get_by_role("button", name="Annuler et revenir au site partenaire")).to_be_visible()
    jeanne.submit("Saisir le code reçu")
    jeanne.enter_code(code)
    jeanne.callback(rp)
