"""Accessibility of the login pages (RGAA): keyboard only, errors, labels, focus.

A person who does not use a mouse fills and submits every step with Tab, Space
and Enter; after a wrong submission, focus lands on the first error, which is in
a role="alert" region and tied to its field by aria-describedby.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .person import Person

ACTIVE = """() => { const e = document.activeElement;
  return e ? {tag: e.tagName.toLowerCase(), id: e.id, type: e.type || '',
              text: (e.innerText || e.value || '').trim()} : null }"""

FOCUS_VISIBLE = """() => { const e = document.activeElement, s = getComputedStyle(e);
  return e.matches(':focus-visible') && s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2 }"""


def active(page) -> dict:
    return page.evaluate(ACTIVE)


def tab_to(page, predicate, limit: int = 15) -> dict:
    """Press Tab until the focused element matches; each stop must show where the focus is."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        now = active(page)
        assert page.evaluate(FOCUS_VISIBLE), f"no visible focus indicator on {now}"
        if predicate(now):
            return now
    raise AssertionError(f"Tab never reached the element (last: {active(page)})")


def press_and_wait(page, key: str) -> None:
    with page.expect_navigation():
        page.keyboard.press(key)


def test_whole_journey_with_the_keyboard_only(rp, make_user, page, mailbox):
    user = make_user()
    jeanne = Person(page, mailbox, user)
    jeanne.open(rp.authorization_url())

    # Step 0: the first field has the focus; Tab goes to the password; Enter submits.
    jeanne.step("password")
    assert active(page)["id"] == "nir"
    page.keyboard.type(user.nir)
    page.keyboard.press("Tab")
    assert active(page)["id"] == "password"
    page.keyboard.type(jeanne.password)
    press_and_wait(page, "Enter")

    # Step 1: the skip link comes first and leads to the content; then the button.
    jeanne.step("code-request")
    first = tab_to(page, lambda e: True)
    assert first["text"] == "Aller au contenu"
    expect(page.get_by_role("link", name="Aller au contenu")).to_be_in_viewport()
    page.keyboard.press("Enter")
    assert active(page)["id"] == "contenu"
    before = jeanne.mails()
    tab_to(page, lambda e: e["text"] == "Recevoir un code de sécurité")
    press_and_wait(page, "Enter")
    code = jeanne.read_code(after=before)

    # Step 3: the code field has the focus; Tab to the box, Space ticks it; Tab, Enter.
    jeanne.step("code")
    assert active(page)["id"] == "code"
    page.keyboard.type(code)
    tab_to(page, lambda e: e["type"] == "checkbox")
    page.keyboard.press("Space")
    expect(page.get_by_label("J'utilise mon ordinateur personnel")).to_be_checked()
    tab_to(page, lambda e: e["text"] == "Me connecter")
    press_and_wait(page, "Enter")
    jeanne.callback(rp)


def test_errors_get_the_focus_and_are_tied_to_their_fields(rp, make_user, page, mailbox):
    jeanne = Person(page, mailbox, make_user())
    jeanne.open(rp.authorization_url())
    jeanne.step("password")
    press_and_wait(page, "Enter")  # nothing typed

    # Focus on the first field in error; the summary is an alert listing every error.
    assert active(page)["id"] == "nir"
    summary = page.get_by_role("alert")
    expect(summary).to_have_count(1)
    expect(summary.get_by_role("link")).to_have_text([
        "Numéro de sécurité sociale : Saisissez votre numéro de sécurité sociale.",
        "Mot de passe : Saisissez votre mot de passe.",
    ])
    for field, message in [("Numéro de sécurité sociale", "Saisissez votre numéro de sécurité sociale."),
                           ("Mot de passe", "Saisissez votre mot de passe.")]:
        box = page.get_by_label(field, exact=True)
        expect(box).to_have_attribute("aria-invalid", "true")
        described = (box.get_attribute("aria-describedby") or "").split()
        texts = [page.locator(f"[id='{i}']").inner_text() for i in described]
        assert any(message in t for t in texts), f"{field}: {message!r} not in its description {texts}"
    expect(page.get_by_label("Numéro de sécurité sociale", exact=True)).to_have_accessible_description(
        "15 caractères : les 13 chiffres de votre carte Vitale et la clé de 2 chiffres. "
        "Erreur : Saisissez votre numéro de sécurité sociale.")

    # A link of the summary takes the focus to its field.
    summary.get_by_role("link", name="Mot de passe : Saisissez votre mot de passe.").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Mot de passe", exact=True)).to_be_focused()

    # Wrong credentials (case 4): tied to the password field like any error (issue 11), which gets
    # the focus; the summary links to it; the title says « Erreur : ».
    page.get_by_label("Numéro de sécurité sociale", exact=True).fill(jeanne.user.nir)
    page.get_by_label("Mot de passe", exact=True).fill("Pas-le-bon-2024")
    press_and_wait(page, "Enter")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Numéro de sécurité sociale ou mot de passe incorrect")
    password = page.get_by_label("Mot de passe", exact=True)
    expect(password).to_be_focused()
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(password).to_have_accessible_description(re.compile("mot de passe incorrect"))
    expect(alert.get_by_role("link", name=re.compile("^Mot de passe : Numéro de sécurité sociale"))).to_have_attribute(
        "href", "#password")
    assert page.title().startswith("Erreur : ")

    # Step 3: a code of the wrong shape is tied to the code field and gets the focus.
    jeanne.give_password()
    jeanne.request_code()
    jeanne.enter_code("12ab")
    code = page.get_by_label("Code de sécurité", exact=True)
    expect(code).to_be_focused()
    expect(code).to_have_attribute("aria-invalid", "true")
    expect(code).to_have_accessible_description("6 chiffres, par exemple 123456. "
                                                "Erreur : Le code de sécurité comporte exactement 6 chiffres.")


def test_every_input_has_a_visible_label(rp, make_user, page, mailbox):
    jeanne = Person(page, mailbox, make_user())
    jeanne.open(rp.authorization_url())
    jeanne.give_password()
    jeanne.request_code()
    jeanne.step("code")
    for name in ["Code de sécurité", "J'utilise mon ordinateur personnel"]:
        field = page.get_by_label(name, exact=True)
        expect(field).to_be_visible()
        label = page.locator(f"label[for='{field.get_attribute('id')}']")
        expect(label).to_be_visible()
        expect(label).to_have_text(name)
    # Clicking the label ticks the box (a large target).
    page.locator("label[for='remember']").click()
    expect(page.get_by_label("J'utilise mon ordinateur personnel")).to_be_checked()
