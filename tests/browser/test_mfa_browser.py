"""Issue 12 in a real browser: the login with the authenticator app, and with a recovery code.

The person enrolled an app through the security space's service API; the test computes
the TOTP as the app would. In Chromium: the relying party, the password, the choice at
step 1, the app's code (or « utiliser un code de secours »), back to the relying party.
On a 360 px wide phone the pages fit and their buttons can be tapped.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from mfa_pages import enrol, next_code, settle
from oidc_rp import callback_params

from .person import Person

NARROW_PHONE = {"width": 360, "height": 640}


def test_login_with_the_app_from_relying_party_to_relying_party(live_server, rp, make_user, page, mailbox, shoot):
    user = make_user()
    secret, _ = enrol(user)
    jeanne = Person(page, mailbox, user)
    jeanne.open(rp.authorization_url())
    jeanne.give_password()

    card = jeanne.step("factor-choice")
    expect(card).to_contain_text("Étape 2 sur 3")
    expect(page.get_by_role("button", name="Recevoir un code par mail")).to_be_visible()
    shoot(page, "issue12-step1-factor-choice")
    jeanne.submit("Utiliser mon application d'authentification")

    jeanne.step("app-code")
    expect(page).to_have_title("Saisir le code de votre application – compte ameli")
    page.get_by_label("Code de l'application", exact=True).fill("000000" if next_code(secret) != "000000" else "111111")
    jeanne.submit("Me connecter")
    # The error: in the title, the summary linking to the field, the field marked invalid.
    expect(page).to_have_title("Erreur : Saisir le code de votre application – compte ameli")
    expect(page.locator(".alert--error")).to_contain_text("Le code saisi est incorrect ou a déjà servi.")

    settle()
    page.get_by_label("Code de l'application", exact=True).fill(next_code(secret))
    jeanne.submit("Me connecter")
    callback = jeanne.callback(rp)
    token = rp.fetch_token(callback)
    claims = rp.verify_id_token(token["id_token"], token["access_token"]).claims
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "urn:idp:acr:mfa"
    assert callback_params(callback)["state"] == rp.state
    assert mailbox.to(user.email) == []  # no mail needed (« Nouvelle connexion » is off in the tests)


@pytest.fixture
def context(new_context):
    return new_context(viewport=NARROW_PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)


def test_a_recovery_code_on_a_360_px_phone(live_server, rp, make_user, page, mailbox, shoot):
    user = make_user()
    _, codes = enrol(user)
    jeanne = Person(page, mailbox, user)
    jeanne.open(rp.authorization_url())
    jeanne.give_password()
    jeanne.step("factor-choice")
    width, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert inner == 360 and width <= inner
    jeanne.submit("Utiliser mon application d'authentification")
    jeanne.step("app-code")
    jeanne.submit("Je n'ai pas mon téléphone : utiliser un code de secours")

    jeanne.step("recovery-code")
    height = page.get_by_role("button", name="Me connecter").bounding_box()["height"]
    assert height >= 44
    shoot(page, "issue12-step3-recovery-code")
    page.get_by_label("Code de secours", exact=True).fill(codes[0].lower())
    jeanne.submit("Me connecter")

    card = jeanne.step("recovery-notice")
    expect(card).to_contain_text("Il vous en reste 9")
    expect(page.get_by_role("link", name="Mon compte – Sécurité")).to_have_attribute("href", "/mon-compte/securite")
    assert "code de secours" in mailbox.wait_for(user.email)["Subject"]
    jeanne.submit("Continuer")
    jeanne.callback(rp)
