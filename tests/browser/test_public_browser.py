"""The public pages in Chromium (issue 11): footer links reached by a person, axe-core clean at 1280 and 360 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .axe import violations
from .conftest import DESKTOP

PHONE_360 = {"width": 360, "height": 740}
PAGES = ["/", "/accessibilite", "/mentions-legales", "/donnees-personnelles", "/gestion-des-cookies",
         "/connexion/aide"]
FOOTER = [("Accessibilité : partiellement conforme", "Déclaration d'accessibilité"),
          ("Mentions légales", "Mentions légales"),
          ("Données personnelles", "Données personnelles"),
          ("Gestion des cookies", "Gestion des cookies")]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE_360], ids=["1280px", "360px"])
def test_public_pages_have_no_axe_violation_and_fit_the_screen(live_server, new_context, viewport):
    page = new_context(viewport=viewport, bypass_csp=True).new_page()  # CSP relaxed here only, to inject axe
    for path in PAGES:
        page.goto(live_server.url + path)
        assert violations(page) == [], path
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), path


def test_footer_links_lead_to_their_pages_with_44px_targets(live_server, new_context):
    page = new_context(viewport=PHONE_360).new_page()
    page.goto(live_server.url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Le service de connexion du compte ameli")
    for link_name, heading in FOOTER:
        link = page.get_by_role("contentinfo").get_by_role("link", name=link_name)
        assert link.bounding_box()["height"] >= 44, link_name
        link.click()
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    page.goto(live_server.url + "/")
    page.get_by_role("main").get_by_role("link", name="Se connecter au compte ameli : questions fréquentes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Se connecter au compte ameli : questions fréquentes")
