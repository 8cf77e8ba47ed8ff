"""CSP ``form-action``: forms post to the provider only, and a page whose form may be answered
by a redirect to a relying party names that one registered address's origin, nothing else.

Chromium applies ``form-action`` to the redirects that answer a form submission: the last
login step's « Me connecter », « Annuler » and the logout confirmation are answered by a
redirect to the relying party, so their pages must allow its origin — and only its origin.
"""

from __future__ import annotations

import time

import pytest
from joserfc import jwt

from idp.oidc import keys
from idp.security_headers import origin_source
from login_pages import step_of
from oidc_flows import auth_params

CALLBACK = "http://127.0.0.1:8765/callback"
LOGGED_OUT = "http://127.0.0.1:8765/logged-out"


def directives(response) -> dict[str, list[str]]:
    """The CSP of a response, directive by directive."""
    out: dict[str, list[str]] = {}
    for part in response.headers["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        assert name not in out, f"{name} twice"
        out[name] = values
    return out


def form_action(response) -> list[str]:
    return directives(response)["form-action"]


# --- The origin of a registered address ----------------------------------------------------------

@pytest.mark.parametrize(
    "uri, source",
    [
        ("http://127.0.0.1:8765/callback", "http://127.0.0.1:8765"),
        ("https://rp.exemple.fr/retour?x=1", "https://rp.exemple.fr"),
        ("https://RP.Exemple.FR:8443/a/b", "https://rp.exemple.fr:8443"),
        ("http://[::1]:8080/cb", "http://[::1]:8080"),
        ("http://localhost/cb", "http://localhost"),
    ],
)
def test_origin_of_a_registered_address(uri, source):
    assert origin_source(uri) == source


@pytest.mark.parametrize(
    "uri",
    [None, "", "/connexion", "javascript:alert(1)", "data:text/html,x", "https://", "https://a.example:99999/",
     "https://a.example;script-src */", "https://a example/", "https://a.example'/", "ftp://a.example/"],
)
def test_anything_else_gives_no_source(uri):
    assert origin_source(uri) is None


# --- Everywhere: the provider only -----------------------------------------------------------------

@pytest.mark.parametrize("path", ["/connexion", "/connexion/aide", "/logout", "/inconnu", "/jwks.json",
                                  "/.well-known/openid-configuration", "/authorize"])
def test_without_a_login_in_progress_forms_post_to_the_provider_only(web, path):
    r = web.get(path)
    assert r.status_code != 500
    assert form_action(r) == ["'self'"], r.headers["Content-Security-Policy"]
    assert directives(r)["frame-ancestors"] == ["'none'"]


# --- A login in progress: its own relying party's origin ------------------------------------------

def test_every_page_of_a_login_in_progress_names_its_relying_partys_origin(journey, user):
    page = journey.start()
    assert step_of(page) == "password" and form_action(page) == ["'self'", "http://127.0.0.1:8765"]
    page = journey.password(user)
    assert step_of(page) == "code-request" and form_action(page) == ["'self'", "http://127.0.0.1:8765"]
    page = journey.request_code()
    assert step_of(page) == "code" and form_action(page) == ["'self'", "http://127.0.0.1:8765"]
    done = journey.enter_code(journey.code(user.email))
    journey.callback(done)
    # The login is over: the step page is the « no login in progress » page, for the provider only.
    over = journey.get()
    assert over.status_code == 400 and form_action(over) == ["'self'"]


def test_the_origin_is_the_one_of_this_requests_redirect_uri(web, make_client):
    client, _ = make_client(redirect_uris=(CALLBACK, "https://rp.exemple.fr:8443/retour?depuis=idp"))
    params, _ = auth_params(client, redirect_uri="https://rp.exemple.fr:8443/retour?depuis=idp")
    assert web.get("/authorize", query_string=params).status_code == 302
    page = web.get("/connexion")
    assert page.status_code == 200
    assert form_action(page) == ["'self'", "https://rp.exemple.fr:8443"]
    # The other registered address is not allowed, nor any other relying party.
    assert "127.0.0.1:8765" not in page.headers["Content-Security-Policy"]
    assert "*" not in " ".join(form_action(page))


def test_another_relying_partys_login_in_another_browser_is_not_mixed_in(app, make_client):
    first, _ = make_client(redirect_uris=("https://premier.exemple.fr/cb",))
    second, _ = make_client(redirect_uris=("https://second.exemple.fr/cb",))
    pages = []
    for client in (first, second):
        browser = app.test_client()
        params, _ = auth_params(client, redirect_uri=client.redirect_uris[0])
        assert browser.get("/authorize", query_string=params).status_code == 302
        pages.append(browser.get("/connexion"))
    assert form_action(pages[0]) == ["'self'", "https://premier.exemple.fr"]
    assert form_action(pages[1]) == ["'self'", "https://second.exemple.fr"]


# --- The logout confirmation -----------------------------------------------------------------------

def _provider_token(issuer: str, aud: str) -> str:
    now = int(time.time())
    key = keys.signing_key("RS256")
    return jwt.encode({"alg": "RS256", "kid": key.kid},
                      {"iss": issuer, "aud": aud, "sub": "quelqu-un", "iat": now, "exp": now + 600}, key)


def test_the_logout_confirmation_names_the_post_logout_address_it_will_go_to(app, web, make_client):
    """A relying party's form POST (no session cookie goes with it): the person confirms, then goes back."""
    client, _ = make_client(post_logout_redirect_uris=("https://rp.exemple.fr/au-revoir",))
    hint = _provider_token(app.config["IDP_ISSUER"], client.client_id)
    r = web.post("/logout", data={"id_token_hint": hint,
                                  "post_logout_redirect_uri": "https://rp.exemple.fr/au-revoir", "state": "s"})
    assert r.status_code == 200 and "Voulez-vous vous déconnecter" in r.get_data(as_text=True)
    assert form_action(r) == ["'self'", "https://rp.exemple.fr"]


@pytest.mark.parametrize("params", [
    {"post_logout_redirect_uri": LOGGED_OUT},                     # no hint: no redirect after the form
    {"post_logout_redirect_uri": "https://evil.example/bye"},     # not registered: never followed
])
def test_a_logout_confirmation_that_will_not_redirect_names_nothing(web, make_client, params):
    client, _ = make_client(post_logout_redirect_uris=(LOGGED_OUT,))
    r = web.get("/logout", query_string={"client_id": client.client_id, **params})
    assert r.status_code == 200 and "Voulez-vous vous déconnecter" in r.get_data(as_text=True)
    assert form_action(r) == ["'self'"]
