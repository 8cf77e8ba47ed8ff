"""On a phone (375 × 667, touch, the page's meta viewport honoured): the journey fits the screen.

No horizontal scroll, buttons large enough to tap (44 px, WCAG 2.5.5), text
fields in 16 px at least (smaller ones make mobile browsers zoom in).
"""

from __future__ import annotations

import pytest

from .conftest import PHONE
from .person import Person

TARGETS = """() => Array.from(document.querySelectorAll('main button, main input:not([type=hidden]), main a'))
  .filter(e => e.getClientRects().length)
  .map(e => { const r = e.getBoundingClientRect(), s = getComputedStyle(e);
              return {what: e.tagName + ' ' + (e.innerText || e.name || '').trim().slice(0, 40), tag: e.tagName,
                      type: e.type || '', height: r.height, right: r.right, font: parseFloat(s.fontSize),
                      link: e.classList.contains('button--link')} })"""


@pytest.fixture
def context(new_context):
    return new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)


def fits_a_phone(page) -> None:
    width, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert inner == PHONE["width"], "the page has no meta viewport: a phone would show it zoomed out"
    assert width <= inner, f"horizontal scroll ({width} px in a {inner} px window)"
    for t in page.evaluate(TARGETS):
        assert t["right"] <= inner, f"{t['what']} goes past the right edge"
        if t["tag"] == "BUTTON" and not t["link"]:
            assert t["height"] >= 44, f"{t['what']}: {t['height']} px high, too small to tap"
        if t["tag"] == "INPUT" and t["type"] in ("text", "password"):
            assert t["font"] >= 16, f"{t['what']}: {t['font']} px text, the phone would zoom in"


def test_journey_on_a_phone(rp, make_user, page, mailbox, looks_right):
    jeanne = Person(page, mailbox, make_user())
    jeanne.open(rp.authorization_url())
    jeanne.step("password")
    fits_a_phone(page)
    looks_right(page, "step0-password")
    jeanne.give_password()
    jeanne.step("code-request")
    fits_a_phone(page)
    looks_right(page, "step1-code-request")
    code = jeanne.request_code()
    jeanne.step("code")
    fits_a_phone(page)
    looks_right(page, "step3-code-entry")
    jeanne.enter_code(code, remember=True)
    jeanne.callback(rp)


def test_lock_page_on_a_phone(rp, make_user, page, mailbox, looks_right):
    jeanne = Person(page, mailbox, make_user())
    jeanne.open(rp.authorization_url())
    for _ in range(3):
        jeanne.give_password(password="Pas-le-bon-2024")
    jeanne.heading("La connexion est bloquée pendant quelques minutes")
    fits_a_phone(page)
    looks_right(page, "case6-password-lock")
