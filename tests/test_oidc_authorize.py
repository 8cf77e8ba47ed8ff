"""The authorization endpoint: who may be sent back where, and with what.

Errors before the client and its exact redirect URI are known are a French page
(400, never a redirect); errors after it go back to that URI with ``error``,
``state`` and ``iss`` (RFC 9207). Small cases use Flask's test client; flows that
need a login use the served provider.
"""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from idp.extensions import db
from idp.models import BrowserSession
from oidc_flows import OP, assert_error_page, assert_error_redirect, auth_params, query, without_query

REDIRECT = "http://127.0.0.1:8765/callback"
OTHER_REDIRECT = "https://rp.exemple.fr/retour"


@pytest.fixture
def client(make_client):
    return make_client(redirect_uris=(REDIRECT, OTHER_REDIRECT))[0]


@pytest.fixture
def issuer(app):
    return app.config["IDP_ISSUER"]


def get(web, params):
    return web.get("/authorize", query_string=params)


# --- Client and redirect URI: a page, never a redirect ------------------------------------------

def test_valid_request_starts_the_login(web, client):
    params, _ = auth_params(client)
    r = get(web, params)
    assert r.status_code == 302
    assert r.headers["Location"].endswith("/connexion")


@pytest.mark.parametrize("client_id", [None, "", "inconnu", "x" * 65, "x" * 5000, "a\x00b", "é"])
def test_unknown_or_missing_client_is_a_page(web, client, client_id):
    params, _ = auth_params(client, client_id=client_id)
    if client_id is None:
        params.pop("client_id", None)
    assert_error_page(get(web, params))


@pytest.mark.parametrize(
    "redirect_uri",
    [
        REDIRECT + "/",                                  # trailing slash
        "http://127.0.0.1:8765/Callback",                # case of the path
        "https://RP.exemple.fr/retour",                  # case of the host
        "HTTPS://rp.exemple.fr/retour",                  # case of the scheme
        REDIRECT + "?next=https://evil.example",         # extra query parameter
        REDIRECT + "#fragment",                          # fragment
        "http://127.0.0.1:8766/callback",                # other port
        "http://127.0.0.1:80/callback",                  # explicit other port
        "http://rp.exemple.fr/retour",                   # http instead of https
        "https://rp.exemple.fr:443/retour",              # same origin, other spelling
        REDIRECT + "/../evil",                           # path traversal
        REDIRECT + "evil",                               # prefix match
        "http://127.0.0.1:8765@evil.example/callback",   # userinfo trick
        "http://127.0.0.1:8765/%63allback",              # percent-encoding
        "https://evil.example/retour",                   # another host
        " " + REDIRECT,                                  # leading space
        "",                                              # empty
        None,                                            # missing
        "http://127.0.0.1:8765/callback\u00e9",          # non-ASCII
        'http://127.0.0.1:8765/"callback',               # quote
        "http://127.0.0.1:8765/\\callback",              # backslash
        "http://127.0.0.1:8765/\ufffd",                  # replacement character
        "javascript:alert(1)",
    ],
)
def test_redirect_uri_must_match_exactly_or_a_page_is_shown(web, client, redirect_uri):
    params, _ = auth_params(client, redirect_uri=REDIRECT)
    if redirect_uri is None:
        del params["redirect_uri"]
    else:
        params["redirect_uri"] = redirect_uri
    text = assert_error_page(get(web, params))
    assert "La demande de connexion est invalide" in text
    if redirect_uri and "evil" in redirect_uri:
        assert "evil.example" not in text.split("Code technique")[0]


def test_redirect_uri_error_wins_over_every_later_error(web, client):
    """A bad redirect URI is a page even when the request is also bad in other ways."""
    params, _ = auth_params(
        client, redirect_uri="https://evil.example/cb", response_type="token", scope="profile",
        code_challenge=None, nonce=None, request="x",
    )
    assert_error_page(get(web, params))


def test_both_registered_redirect_uris_are_accepted(web, client):
    for uri in (REDIRECT, OTHER_REDIRECT):
        params, _ = auth_params(client, redirect_uri=uri)
        r = get(web, params)
        assert r.status_code == 302 and r.headers["Location"].endswith("/connexion")


def test_post_to_authorize_follows_the_same_rules(web, client, issuer):
    params, _ = auth_params(client, redirect_uri="https://evil.example/cb")
    assert_error_page(web.post("/authorize", data=params))
    params, _ = auth_params(client, response_type="token")
    assert_error_redirect(web.post("/authorize", data=params), REDIRECT, "unsupported_response_type",
                          params["state"], issuer)


# --- Errors sent back to the verified redirect URI: error, state, iss ---------------------------

@pytest.mark.parametrize(
    "response_type",
    ["token", "id_token", "code id_token", "id_token code", "code token", "id_token token",
     "code id_token token", "none", "CODE", "code code", "", None, "t\u00e9", 'co"de', "code\\"],
)
def test_only_response_type_code(web, client, issuer, response_type):
    params, _ = auth_params(client, response_type=response_type)
    r = get(web, params)
    assert_error_redirect(r, REDIRECT, "unsupported_response_type", params["state"], issuer)


@pytest.mark.parametrize("scope", ["profile email", "", None, "openid-connect", "OPENID", "profile,openid"])
def test_openid_scope_is_required(web, client, issuer, scope):
    params, _ = auth_params(client, scope=scope)
    assert_error_redirect(get(web, params), REDIRECT, "invalid_scope", params["state"], issuer)


def test_client_not_registered_for_openid_gets_invalid_scope(web, make_client, issuer):
    client, _ = make_client(scope="profile email")
    params, _ = auth_params(client)
    assert_error_redirect(get(web, params), REDIRECT, "invalid_scope", params["state"], issuer)


def test_error_redirect_without_state_carries_iss_and_no_state(web, client, issuer):
    params, _ = auth_params(client, response_type="token", state=None)
    assert_error_redirect(get(web, params), REDIRECT, "unsupported_response_type", None, issuer)
    params, _ = auth_params(client, code_challenge=None, code_challenge_method=None, state=None)
    assert_error_redirect(get(web, params), REDIRECT, "invalid_request", None, issuer)


def test_error_redirect_keeps_the_redirect_uris_own_query(web, make_client, issuer):
    uri = "https://rp.exemple.fr/cb?tenant=7"
    client, _ = make_client(redirect_uris=(uri,))
    params, _ = auth_params(client, redirect_uri=uri, response_type="token")
    r = get(web, params)
    assert r.status_code == 302
    assert r.headers["Location"].startswith("https://rp.exemple.fr/cb?tenant=7&")
    got = query(r.headers["Location"])
    assert got["tenant"] == "7" and got["error"] == "unsupported_response_type" and got["iss"] == issuer


# --- PKCE: S256 only, always ---------------------------------------------------------------------

@pytest.mark.parametrize(
    "overrides",
    [
        {"code_challenge": None},
        {"code_challenge": None, "code_challenge_method": None},
        {"code_challenge": ""},
        {"code_challenge_method": "plain"},
        {"code_challenge_method": None},            # would default to plain
        {"code_challenge_method": ""},
        {"code_challenge_method": "s256"},
        {"code_challenge_method": "S512"},
        {"code_challenge": "a" * 42},               # too short
        {"code_challenge": "a" * 129},              # too long
        {"code_challenge": "a" * 42 + "+"},         # outside the unreserved set
        {"code_challenge": "a" * 42 + "="},
    ],
    ids=["no-challenge", "no-pkce", "empty-challenge", "plain", "no-method", "empty-method", "lowercase",
         "s512", "short", "long", "plus", "padding"],
)
def test_pkce_s256_is_required(web, client, issuer, overrides):
    params, _ = auth_params(client, **overrides)
    assert_error_redirect(get(web, params), REDIRECT, "invalid_request", params["state"], issuer)


# --- nonce ------------------------------------------------------------------------------------

def test_empty_nonce_is_refused(web, client, issuer):
    # A missing nonce is fine with PKCE (OIDC Core §3.1.2.1; tests/test_oidc_client_policy.py), an empty one is not.
    params, _ = auth_params(client, nonce="")
    assert_error_redirect(get(web, params), REDIRECT, "invalid_request", params["state"], issuer)


def test_nonce_reused_after_a_completed_login_is_refused(op, make_user, make_client, issuer):
    user = make_user()
    client, _ = make_client()
    first = op.login(client, user)
    params, _ = auth_params(client, nonce=first.params["nonce"])
    r = op.authorize(params)
    got = assert_error_redirect(r, client.redirect_uris[0], "invalid_request", params["state"], op.url)
    assert "replay" in got.get("error_description", "").lower()


def test_same_nonce_for_another_client_is_accepted(op, make_user, make_client):
    user = make_user()
    client_a, _ = make_client()
    client_b, _ = make_client()
    first = op.login(client_a, user)
    second = op.login(client_b, user, nonce=first.params["nonce"])
    assert second.code


def test_nonce_reused_by_two_logins_in_progress_lets_only_the_first_through(op, live_server, make_user, make_client,
                                                                             new_browser):
    """Two logins start with the same nonce; the second completes after the first: refused."""
    user = make_user()
    client, _ = make_client()
    params_a, _ = auth_params(client)
    params_b, _ = auth_params(client, nonce=params_a["nonce"])
    op_b = OP(live_server.url, new_browser())
    assert op.authorize(params_a).headers["Location"].endswith("/connexion")
    assert op_b.authorize(params_b).headers["Location"].endswith("/connexion")

    r = op.finish_login(op.url + "/connexion", user)
    assert query(r.headers["Location"]).get("code")

    r = op_b.finish_login(op.url + "/connexion", user)
    got = assert_error_redirect(r, REDIRECT, "invalid_request", params_b["state"], op.url, status=303)
    assert "replay" in got.get("error_description", "").lower()


# --- Parameters: once each, bounded, no request objects, query mode only -----------------------

@pytest.mark.parametrize(
    "name",
    ["nonce", "code_challenge", "code_challenge_method", "prompt", "max_age", "login_hint", "acr_values",
     "response_mode"],
)
def test_duplicated_parameter_after_client_check_is_an_error_redirect(web, client, issuer, name):
    params, verifier = auth_params(client, prompt="login", max_age="60", login_hint="x",
                                   acr_values="urn:idp:acr:pwd", response_mode="query")
    pairs = MultiDict(params)
    pairs.add(name, params[name])  # the same value twice is still twice
    r = get(web, pairs)
    assert_error_redirect(r, REDIRECT, "invalid_request", params["state"], issuer)


@pytest.mark.parametrize("name", ["state", "redirect_uri", "client_id", "response_type", "scope"])
def test_duplicated_core_parameter_is_refused_without_redirect(web, client, name):
    """RFC 6749 §3.1; these are checked before the redirect URI is trusted: a page."""
    params, _ = auth_params(client)
    pairs = MultiDict(params)
    pairs.add(name, params[name] if name != "redirect_uri" else OTHER_REDIRECT)
    assert_error_page(get(web, pairs))


@pytest.mark.parametrize(
    "overrides",
    [
        {"state": "s" * 5000},
        {"nonce": "n" * 5000},
        {"nonce": "n" * 256},                 # longer than what is stored
        {"login_hint": "1" * 5000},
        {"acr_values": "a" * 5000},
        {"ui_locales": "fr " * 2000},
        {"unknown_parameter": "u" * 5000},
        {"p" * 100: "1"},
        {"nonce": "n\x00"},
        {"state": "s\x00t"},
        {"login_hint": "\x00"},
        {"nonce": "a\r\nSet-Cookie: x=y"},
    ],
    ids=["state", "nonce", "nonce-256", "login_hint", "acr_values", "ui_locales", "unknown", "long-name",
         "nul-nonce", "nul-state", "nul-hint", "crlf"],
)
def test_oversized_or_control_characters_is_an_error_not_a_crash(web, client, issuer, overrides):
    params, _ = auth_params(client, **overrides)
    r = get(web, params)
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    got = query(r.headers["Location"])
    assert without_query(r.headers["Location"]) == REDIRECT
    assert got["error"] == "invalid_request" and got["iss"] == issuer
    assert len(r.headers["Location"]) < 3000, "an oversized value is not echoed back"


def test_oversized_state_alone_is_not_echoed(web, client, issuer):
    params, _ = auth_params(client, state="s" * 5000)
    r = get(web, params)
    assert r.status_code == 302
    assert "state" not in query(r.headers["Location"])


@pytest.mark.parametrize(
    "name, error", [("request", "request_not_supported"), ("request_uri", "request_uri_not_supported")]
)
def test_request_objects_are_not_supported(web, client, issuer, name, error):
    params, _ = auth_params(client, **{name: "eyJhbGciOiJub25lIn0.e30." if name == "request" else "https://rp.exemple.fr/r"})
    assert_error_redirect(get(web, params), REDIRECT, error, params["state"], issuer)


@pytest.mark.parametrize("mode", ["fragment", "form_post", "web_message", "query.jwt", "jwt", "", "QUERY"])
def test_only_response_mode_query(web, client, issuer, mode):
    params, _ = auth_params(client, response_mode=mode)
    r = get(web, params)
    assert_error_redirect(r, REDIRECT, "invalid_request", params["state"], issuer)
    assert "#" not in r.headers["Location"]


def test_response_mode_query_is_accepted(web, client):
    params, _ = auth_params(client, response_mode="query")
    assert get(web, params).headers["Location"].endswith("/connexion")


@pytest.mark.parametrize(
    "overrides",
    [
        {"prompt": "bogus"},
        {"prompt": "none login"},
        {"prompt": ""},
        {"max_age": "-1"},
        {"max_age": "abc"},
        {"max_age": "1e3"},
        {"max_age": "99999999999"},
    ],
    ids=["prompt-bogus", "prompt-none-login", "prompt-empty", "max_age-negative", "max_age-text",
         "max_age-float", "max_age-huge"],
)
def test_invalid_prompt_max_age(web, client, issuer, overrides):
    """(An unknown ``acr_values`` was refused here too; since issue 9 it is ignored, OIDC Core
    §3.1.2.1: tests/test_oidf_basic_op.py::test_oidcc_unknown_acr_values_ignored.)"""
    params, _ = auth_params(client, **overrides)
    assert_error_redirect(get(web, params), REDIRECT, "invalid_request", params["state"], issuer)


# --- prompt, max_age, login_hint and the provider's session ---------------------------------

def test_prompt_none_without_session_is_login_required(op, client):
    params, _ = auth_params(client, prompt="none")
    r = op.authorize(params)
    assert_error_redirect(r, REDIRECT, "login_required", params["state"], op.url)


def test_prompt_none_with_a_live_session_answers_at_once(op, make_user, client):
    user = make_user()
    op.login(client, user)
    params, _ = auth_params(client, prompt="none")
    r = op.authorize(params)
    assert r.status_code == 302
    got = query(r.headers["Location"])
    assert without_query(r.headers["Location"]) == REDIRECT
    assert got["code"] and got["state"] == params["state"] and got["iss"] == op.url


def test_single_sign_on_answers_without_the_login_page(op, make_user, make_client):
    user = make_user()
    client_a, _ = make_client()
    client_b, _ = make_client()
    op.login(client_a, user)
    params, _ = auth_params(client_b)
    r = op.authorize(params)
    assert r.status_code == 302 and query(r.headers["Location"])["code"]


def test_prompt_login_with_a_session_shows_the_login_page_again(op, make_user, client):
    user = make_user()
    op.login(client, user)
    params, _ = auth_params(client, prompt="login")
    r = op.authorize(params)
    assert r.status_code == 302 and r.headers["Location"].endswith("/connexion")
    page = op.browser.get(op.url + "/connexion", timeout=10)
    assert page.status_code == 200 and 'name="password"' in page.text


@pytest.mark.parametrize("max_age, ago, login_again", [("0", 5, True), ("60", 120, True), ("600", 120, False)])
def test_max_age(op, make_user, client, max_age, ago, login_again):
    user = make_user()
    op.login(client, user)
    db.session.execute(db.update(BrowserSession).values(auth_time=BrowserSession.auth_time - ago))
    db.session.commit()
    params, _ = auth_params(client, max_age=max_age)
    r = op.authorize(params)
    assert r.status_code == 302
    assert r.headers["Location"].endswith("/connexion") is login_again, r.headers["Location"]


def test_prompt_none_with_max_age_exceeded_is_login_required(op, make_user, client):
    user = make_user()
    op.login(client, user)
    db.session.execute(db.update(BrowserSession).values(auth_time=BrowserSession.auth_time - 120))
    db.session.commit()
    params, _ = auth_params(client, prompt="none", max_age="60")
    assert_error_redirect(op.authorize(params), REDIRECT, "login_required", params["state"], op.url)


def test_ended_session_no_longer_signs_in(op, make_user, client):
    user = make_user()
    op.login(client, user)
    db.session.execute(db.update(BrowserSession).values(ended_at=db.func.current_timestamp()))
    db.session.commit()
    params, _ = auth_params(client, prompt="none")
    assert_error_redirect(op.authorize(params), REDIRECT, "login_required", params["state"], op.url)


def test_login_hint_prefills_the_nir(op, make_user, client):
    user = make_user()
    spaced = " ".join([user.nir[0], user.nir[1:3], user.nir[3:5], user.nir[5:7], user.nir[7:10], user.nir[10:13],
                       user.nir[13:]])
    params, _ = auth_params(client, login_hint=spaced)
    r = op.authorize(params)
    assert r.headers["Location"].endswith("/connexion")
    page = op.browser.get(op.url + "/connexion", timeout=10)
    assert f'value="{user.nir}"' in page.text


def test_invalid_login_hint_is_not_prefilled(op, client):
    params, _ = auth_params(client, login_hint='"><script>alert(1)</script>')
    r = op.authorize(params)
    assert r.headers["Location"].endswith("/connexion")
    page = op.browser.get(op.url + "/connexion", timeout=10)
    assert "<script>alert" not in page.text


def test_cancelled_login_sends_access_denied_with_state_and_iss(op, client):
    from conftest import csrf_token

    params, _ = auth_params(client)
    op.authorize(params)
    page = op.browser.get(op.url + "/connexion", timeout=10)
    r = op.browser.post(op.url + "/connexion/annuler", data={"csrf_token": csrf_token(page.text)},
                        allow_redirects=False, timeout=10)
    assert_error_redirect(r, REDIRECT, "access_denied", params["state"], op.url, status=303)


def test_code_response_carries_state_and_iss_and_nothing_else(op, make_user, client):
    user = make_user()
    login = op.login(client, user)
    assert set(login.callback) == {"code", "state", "iss"}
    assert login.callback["state"] == login.params["state"]
    assert login.callback["iss"] == op.url
    assert without_query(login.location) == REDIRECT


def test_redirect_uri_unregistered_during_the_login_is_a_page(op, make_user, client):
    """The request is validated again when the login ends: a URI removed meanwhile is not used."""
    user = make_user()
    params, _ = auth_params(client)
    assert op.authorize(params).headers["Location"].endswith("/connexion")
    client.redirect_uris = [OTHER_REDIRECT]
    db.session.commit()
    r = op.finish_login(op.url + "/connexion", user)
    assert_error_page(r)


def test_client_deleted_during_the_login_is_a_page(op, make_user, client):
    from idp.models import Client, LoginFlow

    user = make_user()
    params, _ = auth_params(client)
    assert op.authorize(params).headers["Location"].endswith("/connexion")
    flow = db.session.scalar(db.select(LoginFlow))
    flow.authorization_params = {**flow.authorization_params, "client_id": "supprime"}
    db.session.commit()
    r = op.finish_login(op.url + "/connexion", user)
    assert_error_page(r)
    assert db.session.scalar(db.select(db.func.count()).select_from(Client)) == 1


def test_prompt_none_asking_for_mfa_with_a_password_session_is_login_required(op, make_user, client):
    from idp.oidc.acr import ACR_MFA

    user = make_user()
    op.login(client, user)
    db.session.execute(db.update(BrowserSession).values(acr="urn:idp:acr:pwd"))
    db.session.commit()
    params, _ = auth_params(client, prompt="none", acr_values=ACR_MFA)
    assert_error_redirect(op.authorize(params), REDIRECT, "login_required", params["state"], op.url)


# --- id_token_hint (OIDC Core §3.1.2.1) ---------------------------------------------------------


def test_id_token_hint_of_the_session_person_gets_a_code_at_once(op, rp, user):
    client, secret = rp
    tokens, _ = op.tokens(client, secret, user)
    params, _ = auth_params(client, prompt="none", id_token_hint=tokens["id_token"])
    assert "code" in query(op.authorize(params).headers["Location"])


def test_id_token_hint_naming_someone_else_is_login_required(op, live_server, rp, make_user, new_browser):
    client, secret = rp
    jeanne, paul = make_user(), make_user(given_name="Paul")
    op.tokens(client, secret, jeanne)  # this browser's session is Jeanne's
    paul_tokens, _ = OP(live_server.url, new_browser()).tokens(client, secret, paul)
    params, _ = auth_params(client, prompt="none", id_token_hint=paul_tokens["id_token"])
    assert_error_redirect(op.authorize(params), REDIRECT, "login_required", params["state"], op.url)
    # Without prompt=none the person is asked to log in again, rather than answered as Jeanne.
    params, _ = auth_params(client, id_token_hint=paul_tokens["id_token"])
    assert op.authorize(params).headers["Location"].endswith("/connexion")


@pytest.mark.parametrize("hint", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
def test_an_unverifiable_id_token_hint_is_login_required(op, rp, user, hint):
    client, secret = rp
    op.tokens(client, secret, user)
    params, _ = auth_params(client, prompt="none", id_token_hint=hint)
    assert_error_redirect(op.authorize(params), REDIRECT, "login_required", params["state"], op.url)


def test_id_token_hint_issued_to_another_client_is_login_required(op, rp, user, make_client):
    client, secret = rp
    other, other_secret = make_client()
    tokens, _ = op.tokens(other, other_secret, user)
    params, _ = auth_params(client, prompt="none", id_token_hint=tokens["id_token"])
    assert_error_redirect(op.authorize(params), REDIRECT, "login_required", params["state"], op.url)
