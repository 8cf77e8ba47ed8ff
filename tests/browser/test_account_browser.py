"""« Mon compte – Sécurité » in Chromium, on a desktop window and a 360 px phone (issue 12).

A person opens the space without a session, logs in through its own pages (no partner
site), walks every page of the space: no axe-core violation, no horizontal scroll, 44 px
tap targets, errors announced and tied to their fields, the password rules checked live.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from idp.models import TrustedDevice
from login_pages import fresh

from .axe import violations
from .conftest import DESKTOP
from .person import PARIS_DATE, Person

SPACE = "/mon-compte/securite"
NARROW = {"width": 360, "height": 740}

SMALL_TARGETS = """() => Array.from(document.querySelectorAll('main a, main button, nav a'))
  .filter(e => e.getClientRects().length)
  .filter(e => { const r = e.getBoundingClientRect(); return r.height < 44 && !e.closest('p, li:not(nav li), td'); })
  .map(e => e.textContent.trim())"""


@pytest.fixture(params=[DESKTOP, NARROW], ids=["desktop", "360px"])
def space_page(request, new_context):
    return new_context(viewport=request.param, bypass_csp=True).new_page()


def checked(page, name: str, targets: bool = True) -> None:
    """What every page of the space must pass."""
    found = violations(page)
    assert not found, f"{name}: {found}"
    width, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"{name}: horizontal scroll ({width} px in {inner} px)"
    if targets:  # the space's own pages (the login pages' « Annuler » link-button is theirs)
        assert page.evaluate(SMALL_TARGETS) == [], f"{name}: tap targets under 44 px"
    assert page.locator("h1").count() == 1


def login_into_space(page, person: Person, url: str, remember: bool = False) -> None:
    page.goto(url + SPACE)
    person.step("password")
    expect(page.locator("[data-login-for='account']")).to_have_text("Connexion à votre espace sécurité")
    expect(page.get_by_role("button", name="Annuler", exact=True)).to_be_visible()
    checked(page, "login for the space", targets=False)
    person.give_password()
    code = person.request_code()
    person.enter_code(code, remember=remember)
    page.wait_for_url(url + SPACE)


def test_every_page_of_the_space(space_page, live_server, make_user, mailbox):
    page, url = space_page, live_server.url
    user = make_user()
    jeanne = Person(page, mailbox, user)
    login_into_space(page, jeanne, url, remember=True)
    expect(page.get_by_role("heading", level=1)).to_have_text("Mon compte – Sécurité")
    checked(page, "overview")

    page.get_by_role("link", name="Navigateurs de confiance").first.click()
    expect(page.locator("[data-this-browser]")).to_have_text("ce navigateur")
    assert PARIS_DATE.search(page.locator("[data-browsers]").inner_text())
    checked(page, "trusted browsers")

    page.get_by_role("link", name="Activité récente").first.click()
    rows = page.locator("[data-activity] tbody tr")
    expect(rows.first).to_contain_text("Connexion réussie")
    expect(rows.first).to_contain_text("Espace sécurité")
    checked(page, "activity")

    # The password: the rules checked while typing (the NIR one by the server), errors after a submit.
    page.get_by_role("link", name="Mot de passe", exact=True).click()
    checked(page, "password")
    page.get_by_label("Nouveau mot de passe", exact=True).fill("Ab1" + user.nir)
    expect(page.locator("[data-rule='password_rule_nir']")).to_have_class(re.compile("rule--unmet"))
    expect(page.locator("[data-rule='password_rule_case']")).to_have_class(re.compile("rule--met"))
    page.get_by_label("Mot de passe actuel", exact=True).fill(jeanne.password)
    page.get_by_label("Confirmation du nouveau mot de passe", exact=True).fill("Ab1" + user.nir)
    jeanne.submit("Changer mon mot de passe")
    assert page.title().startswith("Erreur : ")
    expect(page.locator("[role=alert] a[href='#password']")).to_be_visible()
    assert page.evaluate("() => document.activeElement.id") == "password"  # the first field in error
    expect(page.get_by_label("Nouveau mot de passe", exact=True)).to_have_attribute("aria-invalid", "true")
    checked(page, "password with an error")

    # The e-mail address: a wrong one, then a right one.
    page.get_by_role("link", name="Adresse mail", exact=True).click()
    page.get_by_label("Nouvelle adresse mail").fill("pas-une-adresse")
    jeanne.submit("Recevoir le lien de validation")
    assert page.title().startswith("Erreur : ")
    checked(page, "e-mail with an error")
    page.get_by_label("Nouvelle adresse mail").fill("jeanne.ailleurs@exemple.fr")
    jeanne.submit("Recevoir le lien de validation")
    expect(page.locator("[data-notice='email_link_sent']")).to_contain_text("jeanne.ailleurs@exemple.fr")
    link = re.search(r"http://\S+valider#\S+", mailbox.wait_for("jeanne.ailleurs@exemple.fr").text_body()).group(0)
    page.goto(link)
    checked(page, "e-mail link")
    jeanne.submit("Valider ma nouvelle adresse mail")
    expect(page.get_by_role("heading", level=1)).to_have_text("Votre adresse mail a été modifiée")
    checked(page, "e-mail changed")

    # Revoke this browser, then log out everywhere.
    page.goto(url + SPACE + "/navigateurs")
    jeanne.submit("Retirer ce navigateur")
    expect(page.locator("[data-notice='browser_revoked']")).to_be_visible()
    assert fresh(select(TrustedDevice))[0].revoked_at is not None
    checked(page, "browser revoked")
    page.get_by_role("link", name="Vue d'ensemble").click()
    jeanne.submit("Se déconnecter de tous les appareils")
    expect(page.get_by_role("heading", level=1)).to_have_text("Vous êtes déconnecté de tous les appareils")
    checked(page, "logged out everywhere")
    page.goto(url + SPACE)
    jeanne.step("password")
