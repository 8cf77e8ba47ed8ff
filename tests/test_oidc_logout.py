"""RP-initiated logout: a verified ID token hint naming this browser's person ends the session
and goes back to an exact registered address; another person's hint or no hint asks first;
anything doubtful is a page, and the session is left alone. By GET or by POST (form-encoded)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from conftest import csrf_token
from idp.extensions import db
from idp.models import BrowserSession
from idp.oidc import keys
from oidc_flows import (
    OP,
    assert_error_page,
    assert_error_redirect,
    auth_params,
    b64url_json,
    jwt_parts,
    query,
)

LOGGED_OUT = "http://127.0.0.1:8765/logged-out"


@pytest.fixture
def rp(make_client):
    return make_client(post_logout_redirect_uris=(LOGGED_OUT, "https://rp.exemple.fr/au-revoir"))


@pytest.fixture
def signed_in(op, rp, make_user):
    """A person logged in at the provider through ``rp``; returns the tokens."""
    client, secret = rp
    tokens, _ = op.tokens(client, secret, make_user())
    return tokens


def session_cookie(op) -> str:
    return op.browser.cookies.get("idp_session")


def session_alive(op, client, cookie: str | None = None) -> bool:
    """Ask for a code with prompt=none, in this browser or with a given session cookie only."""
    params, _ = auth_params(client, prompt="none")
    if cookie is None:
        r = op.authorize(params)
    else:
        with requests.Session() as other:
            other.cookies.set("idp_session", cookie)
            r = OP(op.url, other).authorize(params)
    assert r.status_code == 302
    got = query(r.headers["Location"])
    if "code" in got:
        return True
    assert_error_redirect(r, client.redirect_uris[0], "login_required", params["state"], op.url)
    return False


def logout(op, **params) -> requests.Response:
    return op.browser.get(f"{op.url}/logout", params=params, allow_redirects=False, timeout=10)


def post_logout(op, **params) -> requests.Response:
    """RP-initiated logout by POST, the parameters form-encoded (RP-Initiated Logout §2)."""
    return op.browser.post(f"{op.url}/logout", data=params, allow_redirects=False, timeout=10)


LOGOUT = {"GET": logout, "POST": post_logout}
REDIRECT_STATUS = {"GET": 302, "POST": 303}  # a redirect that answers a POST is a 303 (RFC 9700 §4.12)


def provider_token(op, aud: str, sub: str, expired: bool = True) -> str:
    """An ID token signed by the provider's key, as a relying party may keep one."""
    now = int(time.time())
    claims = {"iss": op.url, "aud": aud, "sub": sub, "iat": now - 7200, "exp": now - 3600 if expired else now + 600}
    key = keys.signing_key("RS256")
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


def assert_asks_first(r: requests.Response) -> None:
    assert r.status_code == 200 and "Location" not in r.headers, r.status_code
    assert "Voulez-vous vous déconnecter" in r.text
    assert 'method="post"' in r.text and 'name="csrf_token"' in r.text


# --- Valid hint ----------------------------------------------------------------------------------

def test_valid_hint_and_registered_uri_ends_the_session_and_redirects_with_state(op, rp, signed_in):
    client, _ = rp
    cookie = session_cookie(op)
    assert cookie and session_alive(op, client)
    r = logout(op, id_token_hint=signed_in["id_token"], post_logout_redirect_uri=LOGGED_OUT, state="etat-123")
    assert r.status_code == 302
    assert r.headers["Location"] == f"{LOGGED_OUT}?state=etat-123"
    # The cookie is cleared, and the session is ended on the server: the old cookie is worthless.
    assert not session_cookie(op)
    assert session_alive(op, client) is False
    assert session_alive(op, client, cookie) is False


def test_valid_hint_and_registered_uri_without_state(op, rp, signed_in):
    r = logout(op, id_token_hint=signed_in["id_token"], post_logout_redirect_uri=LOGGED_OUT)
    assert r.status_code == 302 and r.headers["Location"] == LOGGED_OUT


def test_post_with_valid_hint_works_too(op, rp, signed_in):
    client, _ = rp
    cookie = session_cookie(op)
    r = post_logout(op, id_token_hint=signed_in["id_token"], post_logout_redirect_uri=LOGGED_OUT, state="s")
    assert r.status_code == 303 and r.headers["Location"] == f"{LOGGED_OUT}?state=s"
    assert not session_cookie(op)
    assert session_alive(op, client) is False
    assert session_alive(op, client, cookie) is False


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_expired_hint_of_the_sessions_person_still_ends_it_at_once(op, rp, signed_in, method):
    client, _ = rp
    _, claims = jwt_parts(signed_in["id_token"])
    hint = provider_token(op, client.client_id, claims["sub"], expired=True)
    r = LOGOUT[method](op, id_token_hint=hint, post_logout_redirect_uri=LOGGED_OUT, state="etat")
    assert r.status_code == REDIRECT_STATUS[method] and r.headers["Location"] == f"{LOGGED_OUT}?state=etat"
    assert session_alive(op, client) is False


# --- A hint that does not name this browser's person: ask first (logout CSRF) ---------------------

@pytest.mark.parametrize("method", ["GET", "POST"])
def test_another_persons_id_token_asks_first_and_the_session_stays(op, rp, signed_in, make_user, new_browser,
                                                                      method):
    """A real ID token of the same relying party, about someone else (an attacker's own)."""
    client, secret = rp
    theirs, _ = OP(op.url, new_browser()).tokens(client, secret, make_user())
    r = LOGOUT[method](op, id_token_hint=theirs["id_token"], post_logout_redirect_uri=LOGGED_OUT, state="s")
    assert_asks_first(r)
    assert session_cookie(op) and session_alive(op, client) is True


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_expired_token_of_someone_else_asks_first(op, rp, signed_in, method):
    client, _ = rp
    r = LOGOUT[method](op, id_token_hint=provider_token(op, client.client_id, "quelqu-un-d-autre"),
                       post_logout_redirect_uri=LOGGED_OUT)
    assert_asks_first(r)
    assert session_alive(op, client) is True


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_sessions_person_seen_by_another_client_asks_first(op, rp, signed_in, make_client, method):
    """The subject is pairwise: the ``sub`` the session's person has at ``rp`` names nobody at another client."""
    client, _ = rp
    other, _ = make_client(post_logout_redirect_uris=(LOGGED_OUT,))
    _, claims = jwt_parts(signed_in["id_token"])
    hint = provider_token(op, other.client_id, claims["sub"])
    r = LOGOUT[method](op, id_token_hint=hint, post_logout_redirect_uri=LOGGED_OUT)
    assert_asks_first(r)
    assert session_alive(op, client) is True


def test_confirming_after_another_persons_hint_ends_the_session_and_goes_back(op, rp, signed_in):
    client, _ = rp
    hint = provider_token(op, client.client_id, "quelqu-un-d-autre")
    page = logout(op, id_token_hint=hint, post_logout_redirect_uri=LOGGED_OUT, state="s")
    assert_asks_first(page)
    # The form carries the request on.
    for name, value in (("id_token_hint", hint), ("post_logout_redirect_uri", LOGGED_OUT), ("state", "s")):
        assert f'name="{name}" value="{value}"' in page.text
    done = op.browser.post(f"{op.url}/logout", data={"csrf_token": csrf_token(page.text), "id_token_hint": hint,
                                                     "post_logout_redirect_uri": LOGGED_OUT, "state": "s"},
                           allow_redirects=False, timeout=10)
    assert done.status_code == 303 and done.headers["Location"] == f"{LOGGED_OUT}?state=s"
    assert session_alive(op, client) is False


def test_a_cross_site_post_without_the_session_cookie_asks_on_the_providers_page(op, rp, signed_in):
    """SameSite=Lax: a relying party's form POST carries no session cookie; the confirmation page's POST does."""
    client, _ = rp
    jar = op.browser.cookies
    cookie = jar.get("idp_session")
    jar.clear(domain=jar.list_domains()[0], path="/", name="idp_session")  # what a cross-site POST sends
    params = {"id_token_hint": signed_in["id_token"], "post_logout_redirect_uri": LOGGED_OUT, "state": "s"}
    page = post_logout(op, **params)
    assert_asks_first(page)
    assert session_alive(op, client, cookie) is True
    # The person posts the page's form, from the provider's own page: the session cookie goes along.
    jar.set("idp_session", cookie)
    done = op.browser.post(f"{op.url}/logout", data={"csrf_token": csrf_token(page.text), **params},
                           allow_redirects=False, timeout=10)
    assert done.status_code == 303 and done.headers["Location"] == f"{LOGGED_OUT}?state=s"
    assert session_alive(op, client, cookie) is False


def test_valid_hint_without_redirect_uri_shows_the_done_page(op, rp, signed_in):
    client, _ = rp
    r = logout(op, id_token_hint=signed_in["id_token"])
    assert r.status_code == 200 and "Location" not in r.headers
    assert "Vous êtes déconnecté" in r.text
    assert session_alive(op, client) is False


@pytest.mark.parametrize(
    "uri",
    [
        LOGGED_OUT + "/",
        LOGGED_OUT + "?next=https://evil.example",
        LOGGED_OUT + "#x",
        "http://127.0.0.1:8766/logged-out",
        "https://evil.example/logged-out",
        "http://127.0.0.1:8765/Logged-out",
        "http://127.0.0.1:8765/callback",  # a redirect URI, not a post-logout one
        "javascript:alert(1)",
    ],
)
def test_unregistered_post_logout_uri_is_never_followed(op, rp, signed_in, uri):
    r = logout(op, id_token_hint=signed_in["id_token"], post_logout_redirect_uri=uri, state="s")
    assert r.status_code == 200, r.status_code
    assert "Location" not in r.headers
    assert "evil.example" not in r.text


def test_another_clients_post_logout_uri_is_not_followed(op, rp, make_client, signed_in):
    make_client(post_logout_redirect_uris=("https://autre.exemple.fr/bye",))
    r = logout(op, id_token_hint=signed_in["id_token"], post_logout_redirect_uri="https://autre.exemple.fr/bye")
    assert r.status_code == 200 and "Location" not in r.headers


def test_client_id_must_match_the_hints_audience(op, rp, make_client, signed_in):
    client, _ = rp
    other, _ = make_client(post_logout_redirect_uris=(LOGGED_OUT,))
    r = logout(op, id_token_hint=signed_in["id_token"], client_id=other.client_id, post_logout_redirect_uri=LOGGED_OUT)
    assert_error_page(r)
    assert session_alive(op, client) is True
    r = logout(op, id_token_hint=signed_in["id_token"], client_id=client.client_id, post_logout_redirect_uri=LOGGED_OUT)
    assert r.status_code == 302


def test_expired_hint_is_still_accepted(op, rp, make_user):
    """RP-Initiated Logout §2: the OP should accept an ID token whose exp has passed."""
    client, _ = rp
    claims = {"iss": op.url, "aud": client.client_id, "sub": "x", "iat": int(time.time()) - 7200,
              "exp": int(time.time()) - 3600}
    key = keys.signing_key("RS256")
    hint = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
    r = logout(op, id_token_hint=hint, post_logout_redirect_uri=LOGGED_OUT)
    assert r.status_code == 302 and r.headers["Location"] == LOGGED_OUT


# --- Forged hints: a page, no redirect, the session untouched -----------------------------------

def _forge(kind: str, op, client, genuine: str) -> str:
    header, claims = jwt_parts(genuine)
    if kind == "alg-none":
        return f"{b64url_json({'alg': 'none', 'typ': 'JWT'})}.{b64url_json(claims)}."
    if kind == "alg-none-kid":
        return f"{b64url_json({'alg': 'none', 'kid': header['kid']})}.{b64url_json(claims)}."
    if kind == "hs256-public-key":
        # Key confusion: HMAC with the RSA public key (PEM, then raw JWK JSON) as the secret.
        jwks = requests.get(f"{op.url}/jwks.json", timeout=10).json()
        jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
        secret = RSAKey.import_key(jwk).as_pem(private=False)
        h = {"alg": "HS256", "kid": header["kid"], "typ": "JWT"}
        data = f"{b64url_json(h)}.{b64url_json(claims)}"
        sig = base64.urlsafe_b64encode(hmac.new(secret, data.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
        return f"{data}.{sig}"
    if kind == "foreign-key-same-kid":
        foreign = RSAKey.generate_key(2048, parameters={"kid": header["kid"]}, private=True)
        return jwt.encode({"alg": "RS256", "kid": header["kid"]}, claims, foreign)
    if kind == "foreign-es256":
        foreign = ECKey.generate_key("P-256", parameters={"kid": "etranger"}, private=True)
        return jwt.encode({"alg": "ES256", "kid": "etranger"}, claims, foreign)
    if kind == "tampered-claims":
        other = {**claims, "sub": "quelqu-un-d-autre"}
        _, _, sig = genuine.split(".")
        return f"{genuine.split('.')[0]}.{b64url_json(other)}.{sig}"
    if kind == "tampered-signature":
        head, body, sig = genuine.split(".")
        flipped = ("A" if sig[10] != "A" else "B")
        return f"{head}.{body}.{sig[:10]}{flipped}{sig[11:]}"
    if kind == "stripped-signature":
        head, body, _ = genuine.split(".")
        return f"{head}.{body}."
    if kind == "other-issuer":
        key = keys.signing_key("RS256")
        return jwt.encode({"alg": "RS256", "kid": key.kid}, {**claims, "iss": "https://evil.example"}, key)
    if kind == "no-issuer":
        key = keys.signing_key("RS256")
        return jwt.encode({"alg": "RS256", "kid": key.kid}, {k: v for k, v in claims.items() if k != "iss"}, key)
    if kind == "garbage":
        return "pas.un.jeton"
    if kind == "not-base64":
        return "%%%.***.$$$"
    if kind == "json-array":
        return f"{base64.urlsafe_b64encode(b'[1]').decode().rstrip('=')}.{b64url_json(claims)}.x"
    if kind == "huge":
        return "a" * 9000
    if kind == "jwe-like":
        return "a.b.c.d.e"
    raise AssertionError(kind)


FORGERIES = ["alg-none", "alg-none-kid", "hs256-public-key", "foreign-key-same-kid", "foreign-es256",
             "tampered-claims", "tampered-signature", "stripped-signature", "other-issuer", "no-issuer",
             "garbage", "not-base64", "json-array", "huge", "jwe-like"]


@pytest.mark.parametrize("kind", FORGERIES)
def test_forged_hint_is_an_error_page_and_the_session_stays(op, rp, signed_in, kind):
    client, _ = rp
    hint = _forge(kind, op, client, signed_in["id_token"])
    r = logout(op, id_token_hint=hint, post_logout_redirect_uri=LOGGED_OUT, state="s")
    text = assert_error_page(r)
    assert "La demande de déconnexion est invalide" in text
    assert session_cookie(op), "the session cookie is not cleared"
    assert session_alive(op, client) is True


# --- No hint: confirm first (CSRF-protected form) ----------------------------------------------

def test_without_hint_the_person_confirms_with_a_csrf_protected_form(op, rp, signed_in):
    client, _ = rp
    r = logout(op, client_id=client.client_id, post_logout_redirect_uri=LOGGED_OUT, state="s")
    assert r.status_code == 200 and "Location" not in r.headers
    assert 'method="post"' in r.text and 'name="csrf_token"' in r.text
    assert session_alive(op, client) is True, "showing the form ends nothing"

    # A cross-site POST without the form's token ends nothing.
    forged = op.browser.post(f"{op.url}/logout", data={"client_id": client.client_id}, allow_redirects=False,
                             timeout=10)
    assert forged.status_code in (200, 400) and "Location" not in forged.headers
    assert session_alive(op, client) is True
    wrong = op.browser.post(f"{op.url}/logout", data={"csrf_token": "faux", "client_id": client.client_id},
                            allow_redirects=False, timeout=10)
    assert wrong.status_code in (200, 400) and "Location" not in wrong.headers
    assert session_alive(op, client) is True

    # The real form ends the session; without a hint there is no redirect to the relying party.
    page = logout(op, client_id=client.client_id, post_logout_redirect_uri=LOGGED_OUT, state="s")
    done = op.browser.post(f"{op.url}/logout", data={"csrf_token": csrf_token(page.text), "client_id": client.client_id,
                                                     "post_logout_redirect_uri": LOGGED_OUT, "state": "s"},
                           allow_redirects=False, timeout=10)
    # Post/Redirect/Get: a 303 to the provider's own « déconnecté » page, never to the relying party.
    assert done.status_code == 303 and done.headers["Location"] == "/logout/termine"
    shown = op.browser.get(f"{op.url}/logout/termine", allow_redirects=False, timeout=10)
    assert shown.status_code == 200 and "Vous êtes déconnecté" in shown.text and client.name in shown.text
    assert "Vous êtes déconnecté" in op.browser.get(f"{op.url}/logout/termine", timeout=10).text  # reload
    assert session_alive(op, client) is False


def test_logout_without_any_session_is_harmless(op, rp):
    client, _ = rp
    r = logout(op)
    assert r.status_code == 200 and 'name="csrf_token"' in r.text
    page = r
    done = op.browser.post(f"{op.url}/logout", data={"csrf_token": csrf_token(page.text)}, allow_redirects=False,
                           timeout=10)
    assert done.status_code == 303 and done.headers["Location"] == "/logout/termine"


def test_logout_ends_the_session_for_every_relying_party(op, rp, make_client, signed_in):
    client, _ = rp
    other, _ = make_client()
    assert session_alive(op, other) is True
    logout(op, id_token_hint=signed_in["id_token"])
    assert session_alive(op, other) is False
    assert db.session.scalar(db.select(BrowserSession.ended_at)) is not None
