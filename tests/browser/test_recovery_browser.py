"""The forgotten-password journey in headless Chromium, from the relying party back to it.

Login page → « Mot de passe oublié ? » → step 2 (NIR, birth date, CAPTCHA; the
sound is fetched, not played) → « Recevoir le mail » → the link of the mail →
step 5, whose rules are marked met or unmet while typing (script), in words →
« Valider le nouveau mot de passe » → confirmation → back to the login in
progress, which now takes the new password.
"""

from __future__ import annotations

import io
import re
import wave

import pytest
from playwright.sync_api import expect

from .person import Person

ANSWER = "HX7K4M"
NEW_PASSWORD = "Nouveau-Depart-2025"
LINK_RE = re.compile(r"(https?://[^\s\"<>#]+/mot-de-passe-oublie/nouveau#[A-Za-z0-9_-]+)")


@pytest.fixture
def settings():
    return {"CAPTCHA_TEST_ANSWER": ANSWER}


def rule(page, key: str):
    return page.locator(f"[data-rule='{key}']")


def test_forgotten_password_from_the_relying_party_back_to_it(rp, make_user, page, mailbox, looks_right, shoot):
    user = make_user()
    jeanne = Person(page, mailbox, user, password=NEW_PASSWORD)
    jeanne.open(rp.authorization_url())
    jeanne.step("password")
    page.get_by_role("link", name="Mot de passe oublié ?").click()

    # Step 2.
    jeanne.step("recovery-identity")
    looks_right(page, "recovery-step2-identity")
    image = page.get_by_role("img", name=re.compile(r"^Image de sécurité \(CAPTCHA\)"))
    expect(image).to_be_visible()
    page.wait_for_function("() => document.querySelector('img.captcha-image').complete")
    assert page.evaluate("() => document.querySelector('img.captcha-image').naturalWidth") == 280  # the PNG loaded
    listen = page.get_by_role("button", name="Écouter les caractères")  # the script made the link a button
    expect(listen).to_be_visible()
    listen.focus()
    expect(listen).to_be_focused()
    audio_url = page.evaluate("() => document.querySelector('img.captcha-image').src.replace('image.png', 'son.wav')")
    sound = page.request.get(audio_url)
    assert sound.ok and sound.headers["content-type"].startswith("audio/wav")
    with wave.open(io.BytesIO(sound.body())) as w:
        assert w.getnframes() / w.getframerate() > 0.3 * len(ANSWER)

    # « Nouvelle série de caractères » from the keyboard: a new image, focus on the answer.
    before = image.get_attribute("src")
    page.get_by_role("button", name="Nouvelle série de caractères").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_role("status").first).to_contain_text("Une nouvelle série de caractères est affichée.")
    assert page.locator("img.captcha-image").get_attribute("src") != before
    expect(page.get_by_label("Caractères de l'image")).to_be_focused()

    # A wrong answer: a clear message and a new series; then the right one.
    page.get_by_label("Numéro de sécurité sociale", exact=True).fill(user.nir)
    page.get_by_label("Date de naissance").fill("12/05/1985")
    page.get_by_label("Caractères de l'image").fill("AAAAAA")
    jeanne.submit("Recevoir le mail")
    expect(page.get_by_role("alert")).to_contain_text("ne correspondent pas à la série proposée")
    expect(page.get_by_label("Caractères de l'image")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Caractères de l'image").fill(ANSWER.lower())
    jeanne.submit("Recevoir le mail")

    # Step 3, then the mail.
    jeanne.step("recovery-mail-sent")
    jeanne.heading("Consultez votre messagerie")
    looks_right(page, "recovery-step3-mail-sent")
    link = LINK_RE.search(mailbox.wait_for(user.email).text_body()).group(1)

    # Step 5: the rules follow the typing.
    jeanne.open(link)
    jeanne.step("recovery-password")
    looks_right(page, "recovery-step5-new-password")
    field = page.get_by_label("Nouveau mot de passe", exact=True)
    field.press_sequentially("abc")
    expect(rule(page, "password_rule_length")).to_contain_text("non respectée")
    expect(rule(page, "password_rule_length")).to_have_class(re.compile("rule--unmet"))
    expect(rule(page, "password_rule_case")).to_contain_text("non respectée")
    expect(rule(page, "password_rule_allowed")).to_contain_text(": respectée")
    field.fill("")
    field.press_sequentially(f"Ab-{user.nir}")
    expect(rule(page, "password_rule_nir")).to_contain_text("non respectée")  # asked of the server
    expect(rule(page, "password_rule_birth_date")).to_contain_text(": respectée")
    field.fill("")
    field.press_sequentially("Nouveau dépa")
    expect(rule(page, "password_rule_allowed")).to_contain_text("non respectée")
    shoot(page, "recovery-step5-rules-while-typing")
    field.fill("")
    field.press_sequentially(NEW_PASSWORD)
    for key in ("length", "case", "digit_or_special", "allowed", "nir", "birth_date"):
        expect(rule(page, f"password_rule_{key}")).to_contain_text(": respectée")
        expect(rule(page, f"password_rule_{key}")).to_have_class(re.compile("rule--met"))
    confirm = page.get_by_label("Confirmation du nouveau mot de passe")
    confirm.press_sequentially(NEW_PASSWORD[:-1])
    expect(page.locator("[data-confirm-state]")).to_have_text("Les deux mots de passe sont différents.")
    confirm.press_sequentially(NEW_PASSWORD[-1])
    expect(page.locator("[data-confirm-state]")).to_have_text("Les deux mots de passe sont identiques.")
    jeanne.submit("Valider le nouveau mot de passe")

    # Step 6, and the mail that says when.
    jeanne.step("recovery-done")
    looks_right(page, "recovery-step6-done")
    mailbox.wait_for(user.email, after=1)
    page.get_by_role("link", name="Me connecter avec mon nouveau mot de passe").click()

    # Back in the login in progress, with the new password.
    jeanne.give_password()
    jeanne.enter_code(jeanne.request_code())
    callback = jeanne.callback(rp)
    assert "code=" in callback


def test_without_script_the_rules_are_checked_by_the_server(rp, make_user, new_context, mailbox):
    """Progressive enhancement: with JavaScript off, the sound is a link and the server lists broken rules."""
    user = make_user()
    page = new_context(java_script_enabled=False).new_page()
    jeanne = Person(page, mailbox, user)
    page.goto(rp.issuer + "/mot-de-passe-oublie")
    expect(page.get_by_role("link", name=re.compile("Écouter les caractères"))).to_be_visible()
    page.get_by_label("Numéro de sécurité sociale", exact=True).fill(user.nir)
    page.get_by_label("Date de naissance").fill("12/05/1985")
    page.get_by_label("Caractères de l'image").fill(ANSWER)
    jeanne.submit("Recevoir le mail")
    jeanne.step("recovery-mail-sent")
    # Without script the fragment (the link's secret) cannot be read: the page asks for the link, pasted.
    link = LINK_RE.search(mailbox.wait_for(user.email).text_body()).group(1)
    page.goto(link)
    page.get_by_label("Lien reçu par mail", exact=True).fill(link)
    jeanne.submit("Continuer")
    jeanne.step("recovery-password")
    page.get_by_label("Nouveau mot de passe", exact=True).fill("12/05/1985-Ab")
    page.get_by_label("Confirmation du nouveau mot de passe").fill("12/05/1985-Ab")
    jeanne.submit("Valider le nouveau mot de passe")
    expect(page.get_by_role("alert")).to_contain_text("Ne pas contenir votre date de naissance")
    expect(rule(page, "password_rule_birth_date")).to_contain_text("non respectée")
