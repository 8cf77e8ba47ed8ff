"""The cases of the seed where the login stops or asks again, as a person sees them.

Every page is checked (``looks_right``) in a desktop window and in a phone-sized
one (375 × 667): no horizontal scroll, every input labelled; screenshots when
IDP_SCREENSHOTS is set (``-phone`` suffix for the phone).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from .person import PARIS_DATE, Person


def alert(page, focused: bool = True):
    """The page's main alert (the case's message), which focus lands on."""
    box = page.locator("[role=alert][data-focus-first]")
    expect(box).to_be_visible()
    if focused:
        expect(box).to_be_focused()
    return box


def test_step_pages(rp, make_user, page, mailbox, looks_right):
    jeanne = Person(page, mailbox, make_user())
    jeanne.open(rp.authorization_url())
    jeanne.step("password")
    looks_right(page, "step0-password")
    jeanne.submit("Continuer")  # nothing typed
    expect(alert(page, focused=False)).to_contain_text("Saisissez votre numéro de sécurité sociale")
    expect(page.get_by_label("Numéro de sécurité sociale", exact=True)).to_be_focused()  # the first error
    looks_right(page, "step0-password-errors")
    jeanne.give_password()
    jeanne.step("code-request")
    looks_right(page, "step1-code-request")
    jeanne.request_code()
    jeanne.step("code")
    looks_right(page, "step3-code-entry")
    jeanne.submit("Recevoir un nouveau code de sécurité")
    expect(page.get_by_role("status")).to_contain_text("Un nouveau code de sécurité vient d'être envoyé")
    looks_right(page, "step3-code-resent")
    jeanne.enter_code(jeanne.read_code(after=1))
    jeanne.callback(rp)


def test_case1_email_not_validated(rp, make_user, page, mailbox, looks_right):
    user = make_user(email_verified=False)
    jeanne = Person(page, mailbox, user)
    jeanne.open(rp.authorization_url())
    jeanne.give_password()
    jeanne.heading("Votre adresse mail doit être validée")
    expect(alert(page)).to_contain_text("l'adresse mail de votre compte n'a pas encore été validée")
    looks_right(page, "case1-no-validated-email")
    jeanne.submit("Recevoir un nouveau mail de validation")
    expect(page.get_by_role("status")).to_contain_text("Un nouveau mail de validation vient d'être envoyé")
    assert "/compte/valider-email#" in mailbox.wait_for(user.email).text_body()
    looks_right(page, "case1-validation-mail-sent")


def test_case1_no_email_at_all(rp, make_user, page, mailbox, looks_right):
    jeanne = Person(page, mailbox, make_user(email=None, email_verified=False))
    jeanne.open(rp.authorization_url())
    jeanne.give_password()
    expect(alert(page)).to_contain_text("aucune adresse mail n'est enregistrée dans votre compte")
    expect(page.get_by_role("button", name="Recevoir un nouveau mail de validation")).to_have_count(0)
    looks_right(page, "case1-no-email")


def test_case2_expired_code_then_a_new_one(rp, make_user, page, mailbox, looks_right, monkeypatch):
    from idp.mfa import codes
    from idp.models import utcnow

    jeanne = Person(page, mailbox, make_user())
    jeanne.open(rp.authorization_url())
    jeanne.give_password()
    code = jeanne.request_code()
    # 16 minutes later for the security code (the server runs in this process).
    monkeypatch.setattr(codes, "utcnow", lambda: utcnow() + timedelta(minutes=16))
    jeanne.enter_code(code)
    expect(alert(page, focused=False)).to_contain_text("Ce code de sécurité a expiré")
    looks_right(page, "case2-code-expired")
    jeanne.submit("Recevoir un nouveau code de sécurité")
    expect(page.get_by_role("status")).to_contain_text("Un nouveau code de sécurité vient d'être envoyé")
    jeanne.enter_code(jeanne.read_code(after=1))
    jeanne.callback(rp)


@pytest.mark.parametrize("settings", [{"CODE_QUOTA": 1}], ids=["quota-1"])
def test_case3_too_many_codes(rp, make_user, page, mailbox, looks_right):
    jeanne = Person(page, mailbox, make_user())
    jeanne.open(rp.authorization_url())
    jeanne.give_password()
    jeanne.request_code()
    for _ in range(5):  # « Recevoir un nouveau code de sécurité » until the block
        jeanne.submit("Recevoir un nouveau code de sécurité")
        if page.locator("[data-step='code']").count() == 0:
            break
    jeanne.heading("Vous avez demandé trop de codes de sécurité")
    box = alert(page)
    expect(box).to_contain_text(PARIS_DATE)
    expect(box).to_contain_text("(heure de Paris)")
    looks_right(page, "case3-code-quota")


def test_case4_wrong_password_and_wrong_code(rp, make_user, page, mailbox, looks_right):
    jeanne = Person(page, mailbox, make_user())
    jeanne.open(rp.authorization_url())
    jeanne.give_password(password="Pas-le-bon-2024")
    jeanne.step("password")
    expect(alert(page, focused=False)).to_contain_text("Numéro de sécurité sociale ou mot de passe incorrect")
    # The NIR stays filled, the password does not.
    expect(page.get_by_label("Numéro de sécurité sociale", exact=True)).to_have_value(jeanne.user.nir)
    expect(page.get_by_label("Mot de passe", exact=True)).to_have_value("")
    # Tied to the password field (issue 11), which gets the focus, with case 4's « À noter ».
    expect(page.get_by_label("Mot de passe", exact=True)).to_be_focused()
    expect(alert(page, focused=False)).to_contain_text("À noter : si vous saisissez plusieurs fois")
    looks_right(page, "case4-wrong-password")

    jeanne.give_password()
    code = jeanne.request_code()
    jeanne.enter_code("000000" if code != "000000" else "111111")
    expect(alert(page, focused=False)).to_contain_text("Le code de sécurité saisi est incorrect")
    looks_right(page, "case4-wrong-code")
    jeanne.enter_code(code)
    jeanne.callback(rp)


def test_case5_three_wrong_codes(rp, make_user, page, mailbox, looks_right):
    jeanne = Person(page, mailbox, make_user())
    jeanne.open(rp.authorization_url())
    jeanne.give_password()
    code = jeanne.request_code()
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(2):
        jeanne.enter_code(wrong)
        expect(alert(page, focused=False)).to_contain_text("Le code de sécurité saisi est incorrect")
    jeanne.enter_code(wrong)
    jeanne.heading("Votre compte est bloqué pendant quelques minutes")
    box = alert(page)
    expect(box).to_contain_text(PARIS_DATE)
    looks_right(page, "case5-code-lock")


def test_case6_three_wrong_passwords(rp, make_user, page, mailbox, looks_right):
    jeanne = Person(page, mailbox, make_user())
    jeanne.open(rp.authorization_url())
    for _ in range(2):
        jeanne.give_password(password="Pas-le-bon-2024")
        expect(alert(page, focused=False)).to_contain_text("mot de passe incorrect")
    jeanne.give_password(password="Pas-le-bon-2024")
    jeanne.heading("La connexion est bloquée pendant quelques minutes")
    box = alert(page)
    expect(box).to_contain_text(PARIS_DATE)
    expect(box).to_contain_text("(heure de Paris)")
    expect(page.locator("main")).to_contain_text("Mot de passe oublié ?")
    looks_right(page, "case6-password-lock")


@pytest.mark.parametrize("affiliation, heading, text, name", [
    ("none", "Connexion impossible", "vous n'êtes rattaché ni au Régime général", "case7-not-affiliated"),
    ("pending", "Connexion impossible pour le moment", "est en cours", "case8-affiliation-pending"),
], ids=["case7", "case8"])
def test_case7_and_8_affiliation(rp, make_user, page, mailbox, looks_right, affiliation, heading, text, name):
    jeanne = Person(page, mailbox, make_user(affiliation=affiliation))
    jeanne.open(rp.authorization_url())
    jeanne.give_password()
    jeanne.heading(heading)
    expect(alert(page)).to_contain_text(text)
    looks_right(page, name)


def test_faq(live_server, page, looks_right):
    page.goto(f"{live_server.url}/connexion/aide")
    expect(page.get_by_role("heading", level=1)).to_have_text("Se connecter au compte ameli : questions fréquentes")
    # The seed's four questions, and issue 12's « J'ai perdu le téléphone où se trouve mon application »
    # and « Voir et gérer la sécurité de mon compte » (the security space).
    expect(page.get_by_role("heading", level=2)).to_have_count(6)
    expect(page.locator("main")).to_contain_text("3646")
    looks_right(page, "faq")


def test_help_link_opens_the_faq(rp, make_user, page, mailbox):
    Person(page, mailbox, make_user()).open(rp.authorization_url())
    with page.context.expect_page() as opened:
        page.get_by_role("link", name="Questions fréquentes sur la connexion (nouvelle fenêtre)").click()
    faq = opened.value
    expect(faq.get_by_role("heading", level=1)).to_have_text("Se connecter au compte ameli : questions fréquentes")


def test_no_login_in_progress(live_server, page, looks_right):
    page.goto(f"{live_server.url}/connexion")
    expect(page.get_by_role("heading", level=1)).to_have_text("Cette demande de connexion n'est plus valable")
    looks_right(page, "no-flow")


# Port 1 on 127.0.0.1: nobody listens, the connection is refused at once.
@pytest.mark.parametrize("settings", [{"MAIL_URL": "smtp://127.0.0.1:1?timeout=2"}], ids=["no-smtp"])
def test_mail_service_down(rp, make_user, page, mailbox, looks_right):
    jeanne = Person(page, mailbox, make_user())
    jeanne.open(rp.authorization_url())
    jeanne.give_password()
    jeanne.step("code-request")
    jeanne.submit("Recevoir un code de sécurité")
    jeanne.heading("Le mail n'a pas pu être envoyé")
    looks_right(page, "mail-failed")
