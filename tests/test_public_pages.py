"""The public pages (idp.public, issue 11 « What a French public site must show »).

``/`` says what the service is and links to the help; every page's footer links to the accessibility
statement (« Accessibilité : partiellement conforme »), the legal notice, the personal-data page and the
cookie page; the cookie page lists every cookie the provider really sets, with its lifetime from the
settings and the seed FAQ's answer about the trusted-device cookie; the operator's parts come from settings
or from templates of their own.
"""

from __future__ import annotations

import re

import pytest

from idp import config
from login_pages import page_text

PUBLIC = {
    "/": "Le service de connexion du compte ameli",
    "/accessibilite": "Déclaration d'accessibilité",
    "/mentions-legales": "Mentions légales",
    "/donnees-personnelles": "Données personnelles",
    "/gestion-des-cookies": "Gestion des cookies",
}
FOOTER = {
    "Accessibilité : partiellement conforme": "/accessibilite",
    "Mentions légales": "/mentions-legales",
    "Données personnelles": "/donnees-personnelles",
    "Gestion des cookies": "/gestion-des-cookies",
}
# The seed's FAQ answer (ameli-login-journey, « Pourquoi certains assurés doivent renseigner un code… »).
SEED_FAQ = ("Quand vous cochez la case, un cookie est déposé sur votre navigateur : c'est lui, et uniquement lui, "
            "qui permet de reconnaître votre choix. Sans ce cookie, un code de sécurité est toujours demandé.")


def footer_links(markup: str) -> dict[str, str]:
    block = re.search(r'<ul class="footer-legal".*?</ul>', markup, re.S)
    assert block, "no legal links in the footer"
    return {page_text(text): href for href, text in re.findall(r'<a href="([^"]+)">(.*?)</a>', block.group(0))}


@pytest.mark.parametrize("url, heading", PUBLIC.items())
def test_public_pages_answer_in_french(web, url, heading):
    r = web.get(url)
    markup = r.get_data(as_text=True)
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert '<html lang="fr">' in markup
    assert re.search(r"<h1[^>]*>" + re.escape(heading) + "</h1>", markup)
    assert footer_links(markup) == FOOTER


def test_home_says_what_the_service_is_and_links_to_the_help(web):
    markup = web.get("/").get_data(as_text=True)
    text = page_text(markup)
    assert "vous connecter avec votre compte ameli" in text and "sites partenaires" in text
    for href in ("/connexion/aide", "/mot-de-passe-oublie/aide"):
        assert f'href="{href}"' in markup
        assert web.get(href).status_code == 200
    assert "3646" in text


@pytest.mark.parametrize("url", ["/connexion/aide", "/mot-de-passe-oublie", "/mot-de-passe-oublie/aide",
                                 "/connexion", "/page-inconnue"])
def test_every_page_has_the_footer_links(web, url):
    r = web.get(url)
    assert footer_links(r.get_data(as_text=True)) == FOOTER, url
    for href in FOOTER.values():
        assert web.get(href).status_code == 200


@pytest.mark.parametrize("settings", [{
    "ACCESSIBILITY_STATUS": "non conforme",
    "ACCESSIBILITY_AUDIT": "Audit interne du 3 décembre 2026 : 41 % des critères respectés.",
    "ACCESSIBILITY_CONTACT": "accessibilite@exemple.fr",
    "LEGAL_PUBLISHER": "Caisse d'essai, 1 rue de l'Exemple, 75000 Paris",
    "LEGAL_DIRECTOR": "Camille Dupont",
    "LEGAL_HOST": "Hébergeur d'essai, 2 rue de l'Exemple, 69000 Lyon",
    "PRIVACY_CONTACT": "dpo@exemple.fr",
}], ids=["operator"])
def test_operator_parts_come_from_the_settings(web, settings):
    footer = footer_links(web.get("/").get_data(as_text=True))
    assert footer["Accessibilité : non conforme"] == "/accessibilite"
    statement = page_text(web.get("/accessibilite").get_data(as_text=True))
    assert "Ce service est non conforme avec le référentiel général" in statement
    assert settings["ACCESSIBILITY_AUDIT"] in statement and "accessibilite@exemple.fr" in statement
    legal = page_text(web.get("/mentions-legales").get_data(as_text=True))
    for key in ("LEGAL_PUBLISHER", "LEGAL_DIRECTOR", "LEGAL_HOST"):
        assert settings[key] in legal
    privacy = page_text(web.get("/donnees-personnelles").get_data(as_text=True))
    assert "dpo@exemple.fr" in privacy and settings["LEGAL_PUBLISHER"] in privacy


def test_defaults_say_what_is_not_filled_in(web):
    legal = page_text(web.get("/mentions-legales").get_data(as_text=True))
    assert "Caisse nationale de l'Assurance Maladie" in legal and "Directeur de la publication" not in legal
    assert "Le service est hébergé par son éditeur." in legal
    statement = page_text(web.get("/accessibilite").get_data(as_text=True))
    assert "partiellement conforme" in statement and "Aucun audit de conformité" in statement


@pytest.mark.parametrize("raw, parsed", [("partiellement conforme", "partiellement conforme"),
                                         ("Totalement  Conforme", "totalement conforme"),
                                         ("non conforme", "non conforme")])
def test_accessibility_status_is_one_of_the_rgaa_levels(raw, parsed):
    assert config.BY_NAME["ACCESSIBILITY_STATUS"].parse(raw) == parsed


def test_accessibility_status_refuses_anything_else():
    with pytest.raises(ValueError, match="must be one of"):
        config.BY_NAME["ACCESSIBILITY_STATUS"].parse("conforme à 80 %")


@pytest.fixture
def override_dir(tmp_path, settings):
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "legal.html").write_text(
        '{% extends "base.html" %}{% block title %}Mentions légales{% endblock %}'
        '{% block content %}<h1>Mentions légales de l\'exploitant</h1>{% endblock %}')
    settings["TEMPLATE_OVERRIDES_DIR"] = str(tmp_path)
    return tmp_path


def test_operator_template_replaces_a_page(override_dir, web):
    markup = web.get("/mentions-legales").get_data(as_text=True)
    assert "<h1>Mentions légales de l'exploitant</h1>" in markup
    assert footer_links(markup) == FOOTER                         # the rest is still the provider's
    assert "Déclaration d'accessibilité" in web.get("/accessibilite").get_data(as_text=True)


def test_cookie_page_lists_every_cookie_a_login_sets(journey, user, live_server):
    """A whole login with « J'utilise mon ordinateur personnel »: each cookie the browser got is on the page."""
    journey.up_to_code_entry(user)
    journey.callback(journey.enter_code(journey.code(user.email), remember=True))
    got = {c.name for c in journey.browser.cookies}
    assert {"idp_session", "idp_device", "idp_csrf"} <= got
    markup = journey.browser.get(f"{live_server.url}/gestion-des-cookies", timeout=10).text
    listed = set(re.findall(r"<code>([^<]+)</code>", markup))
    assert got | {"idp_flow"} <= listed
    text = page_text(markup)
    assert re.search(r"idp_device .*? 6 mois", text) and re.search(r"idp_session .*? 12 heures au plus", text)
    assert re.search(r"idp_flow .*? 30 minutes", text)
    assert "J'utilise mon ordinateur personnel" in text and SEED_FAQ in text
    assert "idp_demo" not in listed                               # the demo's cookie only when the demo is on


@pytest.mark.parametrize("settings", [{"ISSUER": "https://idp.exemple.fr", "TRUSTED_DEVICE_LIFETIME": 30 * 86400,
                                       "LOGIN_FLOW_LIFETIME": 60}], ids=["https"])
def test_cookie_page_names_and_lifetimes_follow_the_settings(web, settings):
    text = page_text(web.get("/gestion-des-cookies").get_data(as_text=True))
    for base in ("idp_session", "idp_flow", "idp_device", "idp_csrf"):
        assert f"__Host-{base}" in text
    assert re.search(r"__Host-idp_device .*? 1 mois", text) and re.search(r"__Host-idp_flow .*? 1 minute", text)
    assert "il y a moins de 1 mois ?" in text
