"""« Mon compte – Sécurité » › the authenticator app, in Chromium on a desktop window and a 360 px phone (issue 12).

The person enrols an app by reading the key off the page (as when the QR code cannot be
scanned) and the test computes the code with pyotp, as the app would; a wrong first code
is said on its field; the ten recovery codes are shown once, kept; then the person logs
out, logs in with the app, and removes it. Every page: no axe-core violation, no
horizontal scroll, 44 px tap targets.
"""

from __future__ import annotations

import re

import pyotp
from playwright.sync_api import expect

from mfa_pages import next_code, settle

from .person import Person
from .test_account_browser import SPACE, checked, login_into_space, space_page  # noqa: F401  (the fixture)


def test_enrol_an_app_keep_the_codes_log_in_with_it_remove_it(space_page, live_server, make_user, mailbox, shoot):
    page, url = space_page, live_server.url
    jeanne = Person(page, mailbox, make_user())
    login_into_space(page, jeanne, url)
    expect(page.locator("[data-app-status='none']")).to_contain_text("aucune application activée")

    page.get_by_role("link", name="Application d'authentification", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Application d'authentification")
    checked(page, "app page, no app")
    jeanne.submit("Activer une application d'authentification")

    # The enrolment page: the QR code with its text alternative, the key written out, the settings.
    expect(page.get_by_role("heading", level=1)).to_have_text("Activer une application d'authentification")
    expect(page.get_by_role("img", name=re.compile("^QR code à scanner"))).to_be_visible()
    shown_key = page.locator("[data-secret-key]").inner_text()
    assert re.fullmatch(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}", shown_key)
    expect(page.locator(".manual-key")).to_contain_text("30 secondes")
    expect(page.locator(".manual-key")).to_contain_text("SHA-1")
    checked(page, "enrolment")
    shoot(page, "issue12-space-app-enrolment")
    secret = shown_key.replace(" ", "")

    # A wrong first code: said in the title, the summary and on the field, which gets the focus.
    settle()
    right = pyotp.TOTP(secret).now()
    page.get_by_label("Code affiché par l'application").fill("000000" if right != "000000" else "111111")
    jeanne.submit("Activer l'application")
    assert page.title().startswith("Erreur : ")
    expect(page.locator("[role=alert] a[href='#code']")).to_be_visible()
    field = page.get_by_label("Code affiché par l'application")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_attribute("aria-describedby", "code-aide code-erreur")
    assert page.evaluate("() => document.activeElement.id") == "code"
    checked(page, "enrolment with an error")

    settle()
    field.fill(pyotp.TOTP(secret).now())
    jeanne.submit("Activer l'application")
    expect(page.locator("[data-notice='app_enrolled']")).to_be_visible()
    codes = page.locator("[data-recovery-codes] li").all_inner_texts()
    assert len(codes) == 10 and all(re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", c) for c in codes)
    expect(page.get_by_role("button", name="Imprimer")).to_be_visible()
    checked(page, "recovery codes shown once")
    shoot(page, "issue12-space-recovery-codes")
    page.reload()
    expect(page.locator("[data-codes-gone]")).to_be_visible()
    expect(page.locator("[data-recovery-codes]")).to_have_count(0)
    checked(page, "recovery codes already shown")

    page.get_by_role("navigation").get_by_role("link", name="Application d'authentification", exact=True).click()
    expect(page.locator("[data-codes-left]")).to_have_attribute("data-codes-left", "10")
    checked(page, "app page, app active")

    # Log out, then log in with the app.
    page.get_by_role("link", name="Vue d'ensemble").click()
    expect(page.locator("[data-app-status='active']")).to_contain_text("10 codes de secours restants")
    jeanne.submit("Se déconnecter de tous les appareils")
    expect(page.get_by_role("heading", level=1)).to_have_text("Vous êtes déconnecté de tous les appareils")
    page.goto(url + SPACE + "/application")
    jeanne.give_password()
    jeanne.step("factor-choice")
    jeanne.submit("Utiliser mon application d'authentification")
    jeanne.step("app-code")
    page.get_by_label("Code de l'application", exact=True).fill(next_code(secret))
    jeanne.submit("Me connecter")
    page.wait_for_url(url + SPACE + "/application")
    expect(page.locator("[data-app-status='active']")).to_be_visible()

    # Remove it (the login with the app is fresh): a confirmation, then the codes go too.
    page.get_by_role("link", name="Retirer l'application d'authentification").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Retirer l'application d'authentification")
    checked(page, "removal confirmation")
    jeanne.submit("Retirer l'application et les codes de secours")
    expect(page.locator("[data-notice='app_removed']")).to_contain_text("ainsi que vos codes de secours")
    expect(page.locator("[data-app-status='none']")).to_be_visible()
    checked(page, "app removed")
