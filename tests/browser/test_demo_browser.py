"""The demo's pages in Chromium (issue 11): the mailbox fits a 360 px screen, its mail text is reachable with the
keyboard (axe ``scrollable-region-focusable``), and axe-core finds nothing on the demo pages at 1280 and 360 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from idp.mail import send_mail

from .axe import violations
from .conftest import DESKTOP

PHONE_360 = {"width": 360, "height": 740}
LONG_ADDRESS = "jeanne.martin.avec-une-adresse-vraiment-tres-longue@demo.invalid"
LONG_LINE = "https://127.0.0.1/mot-de-passe-oublie/nouveau#" + "x" * 120


@pytest.fixture
def settings(tmp_path):
    return {"DEMO": True, "MAIL_URL": "console://", "DEMO_CLIENT_FILE": str(tmp_path / "demo-client.json"),
            "MAIL_OUTBOX_DIR": str(tmp_path / "outbox")}


@pytest.fixture
def demo_mail(app):
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        send_mail(LONG_ADDRESS, "Votre compte ameli – renouveler mon mot de passe",
                  f"Bonjour,\n\nOuvrez ce lien :\n{LONG_LINE}\n", f"<p>Ouvrez ce lien : {LONG_LINE}</p>")


def fits(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE_360], ids=["1280px", "360px"])
def test_demo_pages_have_no_axe_violation(live_server, new_context, demo_mail, viewport):
    page = new_context(viewport=viewport, bypass_csp=True).new_page()  # CSP relaxed here only, to inject axe
    for path in ("/demo/", "/demo/mailbox"):
        page.goto(live_server.url + path)
        assert violations(page) == [], path
    page.get_by_role("link", name="Votre compte ameli – renouveler mon mot de passe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Votre compte ameli – renouveler mon mot de passe")
    assert violations(page) == []


def test_mailbox_fits_360px_and_the_mail_text_takes_the_keyboard_focus(live_server, new_context, demo_mail):
    page = new_context(viewport=PHONE_360).new_page()
    page.goto(live_server.url + "/demo/mailbox")
    assert fits(page)
    link = page.get_by_role("link", name="Votre compte ameli – renouveler mon mot de passe")
    box = link.bounding_box()
    assert box["x"] + box["width"] <= 360 and box["height"] >= 44
    expect(page.get_by_text(LONG_ADDRESS)).to_be_visible()
    link.click()
    pre = page.locator("pre")
    expect(pre).to_contain_text(LONG_LINE)
    assert fits(page)                                          # the long line scrolls inside the <pre>
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.tagName") == "PRE":
            break
    else:
        raise AssertionError("Tab never reached the mail text")
    assert pre.evaluate("e => e.scrollWidth > e.clientWidth")  # scrollable, and now with the arrow keys
    page.keyboard.press("End")
