"""The token endpoint: codes used once, bound to their client, redirect URI and verifier;
client authentication; the ID token and what it says."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.extensions import db
from idp.models import AuthorizationCode, BrowserSession, Grant, Token, utcnow
from oidc_flows import assert_oauth_error, jwt_parts, new_verifier

REDIRECT = "http://127.0.0.1:8765/callback"
OTHER_REDIRECT = "https://rp.exemple.fr/retour"


@pytest.fixture
def rp(make_client):
    """A confidential relying party with two redirect URIs."""
    return make_client(redirect_uris=(REDIRECT, OTHER_REDIRECT))


def verify(op, id_token: str, client) -> jwt.Token:
    jwks = KeySet.import_key_set(requests.get(f"{op.url}/jwks.json", timeout=10).json())
    token = jwt.decode(id_token, jwks, algorithms=["RS256", "ES256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": op.url},
        aud={"essential": True, "value": client.client_id},
        exp={"essential": True},
        iat={"essential": True},
    ).validate(token.claims)
    return token


def assert_grant_dead(op, client, secret, tokens):
    """Everything issued from one grant is refused: userinfo, introspection, refresh."""
    r = op.userinfo(tokens["access_token"])
    assert r.status_code == 401, r.text
    assert op.is_active(client, secret, tokens["access_token"]) is False
    if "refresh_token" in tokens:
        assert op.is_active(client, secret, tokens["refresh_token"]) is False
        assert_oauth_error(op.refresh(client, secret, tokens["refresh_token"]), "invalid_grant")


# --- Authorization codes ---------------------------------------------------------------------

def test_code_exchange_returns_bearer_tokens(op, rp, user):
    client, secret = rp
    login = op.login(client, user)
    r = op.exchange(client, secret, login)
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Pragma"] == "no-cache"
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert set(body["scope"].split()) == {"openid", "profile", "email", "affiliation"}
    assert body["access_token"] and body["refresh_token"] and body["id_token"]
    assert len(body["access_token"]) >= 43 and body["access_token"] != body["refresh_token"]
    assert op.userinfo(body["access_token"]).status_code == 200


def test_code_is_single_use_and_a_replay_revokes_what_it_issued(op, rp, user):
    client, secret = rp
    login = op.login(client, user)
    first = op.exchange(client, secret, login)
    assert first.status_code == 200
    tokens = first.json()
    assert op.userinfo(tokens["access_token"]).status_code == 200

    assert_oauth_error(op.exchange(client, secret, login), "invalid_grant")
    assert_grant_dead(op, client, secret, tokens)


def test_code_replay_also_revokes_tokens_refreshed_from_it(op, rp, user):
    client, secret = rp
    login = op.login(client, user)
    tokens = op.exchange(client, secret, login).json()
    refreshed = op.refresh(client, secret, tokens["refresh_token"]).json()
    assert op.userinfo(refreshed["access_token"]).status_code == 200
    assert_oauth_error(op.exchange(client, secret, login), "invalid_grant")
    assert_grant_dead(op, client, secret, refreshed)


def test_code_replay_does_not_touch_other_grants(op, rp, user):
    client, secret = rp
    other_tokens, _ = op.tokens(client, secret, user)
    login = op.login(client, user)
    op.exchange(client, secret, login)
    assert_oauth_error(op.exchange(client, secret, login), "invalid_grant")
    assert op.userinfo(other_tokens["access_token"]).status_code == 200


def test_code_is_bound_to_its_client(op, rp, make_client, user):
    client, secret = rp
    other, other_secret = make_client(redirect_uris=(REDIRECT,))
    login = op.login(client, user)
    assert_oauth_error(op.exchange(other, other_secret, login), "invalid_grant")
    # The attempt did not burn the code for its rightful owner.
    assert op.exchange(client, secret, login).status_code == 200


def test_public_client_cannot_redeem_a_confidential_clients_code(op, rp, make_client, user):
    client, secret = rp
    public, _ = make_client(public=True, redirect_uris=(REDIRECT,))
    login = op.login(client, user)
    assert_oauth_error(op.exchange(public, None, login), "invalid_grant")
    # Naming the confidential client without its secret is not authentication.
    r = op.post("/token", data={"grant_type": "authorization_code", "code": login.code, "client_id": client.client_id,
                                "redirect_uri": REDIRECT, "code_verifier": login.verifier})
    assert_oauth_error(r, "invalid_client", 401)


@pytest.mark.parametrize("redirect_uri", [OTHER_REDIRECT, REDIRECT + "/", None, ""])
def test_code_is_bound_to_its_redirect_uri(op, rp, user, redirect_uri):
    client, secret = rp
    login = op.login(client, user)
    assert_oauth_error(op.exchange(client, secret, login, redirect_uri=redirect_uri), "invalid_grant")
    assert op.exchange(client, secret, login).status_code == 200


def test_expired_code_is_refused(op, rp, user):
    client, secret = rp
    login = op.login(client, user)
    db.session.execute(db.update(AuthorizationCode).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert_oauth_error(op.exchange(client, secret, login), "invalid_grant")


def test_code_of_a_revoked_grant_is_refused(op, rp, user):
    client, secret = rp
    login = op.login(client, user)
    db.session.execute(db.update(Grant).values(revoked_at=utcnow()))
    db.session.commit()
    assert_oauth_error(op.exchange(client, secret, login), "invalid_grant")


@pytest.mark.parametrize("code", ["", "inconnu", "x" * 257, "x" * 5000, "é\x00"])
def test_unknown_code_is_invalid_grant(op, rp, code):
    client, secret = rp
    r = op.token(client, secret, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                  "code_verifier": new_verifier()})
    assert_oauth_error(r, "invalid_grant")


def test_missing_code_is_invalid_request(op, rp):
    client, secret = rp
    r = op.token(client, secret, {"grant_type": "authorization_code", "redirect_uri": REDIRECT,
                                  "code_verifier": new_verifier()})
    assert_oauth_error(r, "invalid_request")


def test_code_in_the_query_string_is_not_accepted(op, rp, user):
    client, secret = rp
    login = op.login(client, user)
    r = requests.post(f"{op.url}/token", params={"code": login.code}, auth=(client.client_id, secret), timeout=10,
                      data={"grant_type": "authorization_code", "redirect_uri": REDIRECT,
                            "code_verifier": login.verifier})
    assert_oauth_error(r, "invalid_request")


def test_concurrent_redemption_yields_exactly_one_token(op, rp, user):
    client, secret = rp
    login = op.login(client, user)
    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(lambda _: op.exchange(client, secret, login), range(10)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert statuses.count(400) == 9, statuses
    for r in responses:
        if r.status_code == 400:
            assert r.json()["error"] == "invalid_grant"
    # The race is a replay: what the winner received is revoked too.
    winner = next(r for r in responses if r.status_code == 200).json()
    assert op.userinfo(winner["access_token"]).status_code == 401


# --- PKCE at the token endpoint --------------------------------------------------------------

@pytest.mark.parametrize(
    "verifier, error",
    [
        (None, "invalid_request"),              # downgrade: challenge sent, verifier withheld
        ("", "invalid_request"),
        ("a" * 42, "invalid_request"),          # too short (RFC 7636: 43 to 128)
        ("a" * 129, "invalid_request"),         # too long
        ("a" * 42 + "/", "invalid_request"),    # outside the unreserved set
        ("b" * 64, "invalid_grant"),            # well formed, wrong
        ("same-as-challenge", "invalid_grant"),  # plain comparison would accept it
    ],
    ids=["missing", "empty", "short", "long", "bad-char", "wrong", "challenge-as-verifier"],
)
def test_pkce_verifier_must_match_the_s256_challenge(op, rp, user, verifier, error):
    client, secret = rp
    login = op.login(client, user)
    if verifier == "same-as-challenge":
        verifier = login.params["code_challenge"]
    assert_oauth_error(op.exchange(client, secret, login, code_verifier=verifier), error)


@pytest.mark.parametrize("verifier", ["present", None])
def test_code_without_a_stored_challenge_is_never_redeemed(op, rp, user, verifier):
    """Defence in depth (RFC 9700 §4.8): were a code ever stored without a challenge, neither a
    verifier nor its absence would get tokens for it."""
    client, secret = rp
    login = op.login(client, user)
    db.session.execute(db.update(AuthorizationCode).values(code_challenge=""))
    db.session.commit()
    r = op.exchange(client, secret, login, code_verifier=login.verifier if verifier else None)
    assert_oauth_error(r, "invalid_request")


def test_pkce_failure_for_a_public_client(op, make_client, user):
    client, _ = make_client(public=True)
    login = op.login(client, user)
    assert_oauth_error(op.exchange(client, None, login, code_verifier=None), "invalid_request")
    assert_oauth_error(op.exchange(client, None, login, code_verifier="c" * 50), "invalid_grant")
    assert op.exchange(client, None, login).status_code == 200


# --- Client authentication --------------------------------------------------------------------

@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_confidential_client_authenticates_by_basic_or_post(op, rp, user, method):
    client, secret = rp
    login = op.login(client, user)
    r = op.exchange(client, secret, login, method=method)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
@pytest.mark.parametrize("bad_secret", ["wrong", "", "x" * 5000])
def test_wrong_secret_is_invalid_client_401(op, rp, user, method, bad_secret):
    client, secret = rp
    login = op.login(client, user)
    r = op.exchange(client, bad_secret, login, method=method)
    assert_oauth_error(r, "invalid_client", 401)
    assert r.headers["WWW-Authenticate"].startswith("Basic ")
    assert op.exchange(client, secret, login).status_code == 200, "a failed attempt does not burn the code"


def test_unknown_client_is_invalid_client(op, rp, user):
    client, secret = rp
    login = op.login(client, user)
    r = requests.post(f"{op.url}/token", auth=("inconnu", "secret"), timeout=10,
                      data={"grant_type": "authorization_code", "code": login.code, "redirect_uri": REDIRECT,
                            "code_verifier": login.verifier})
    assert_oauth_error(r, "invalid_client", 401)
    assert "WWW-Authenticate" in r.headers


def test_no_client_authentication_at_all_is_invalid_client(op, rp, user):
    client, _ = rp
    login = op.login(client, user)
    r = requests.post(f"{op.url}/token", timeout=10,
                      data={"grant_type": "authorization_code", "code": login.code, "redirect_uri": REDIRECT,
                            "code_verifier": login.verifier})
    assert_oauth_error(r, "invalid_client", 401)


def test_confidential_client_cannot_use_auth_method_none(op, rp, user):
    client, secret = rp
    login = op.login(client, user)
    assert_oauth_error(op.exchange(client, None, login, method="none"), "invalid_client", 401)
    assert op.exchange(client, secret, login).status_code == 200


def test_public_client_with_pkce_and_auth_method_none(op, make_client, user):
    client, _ = make_client(public=True)
    login = op.login(client, user)
    r = op.exchange(client, None, login, method="none")
    assert r.status_code == 200, r.text
    assert r.json()["id_token"]


def test_public_client_sending_a_secret_is_refused(op, make_client, user):
    client, _ = make_client(public=True)
    login = op.login(client, user)
    assert_oauth_error(op.exchange(client, "made-up", login, method="client_secret_post"), "invalid_client", 401)
    assert_oauth_error(op.exchange(client, "made-up", login, method="client_secret_basic"), "invalid_client", 401)


def test_basic_credentials_are_form_url_decoded(op, make_client, user):
    """RFC 6749 §2.3.1: client_id and secret are form-urlencoded before Basic encoding."""
    client, secret = make_client()
    login = op.login(client, user)
    r = op.exchange(client, secret, login)
    assert r.status_code == 200


# --- Grant types -------------------------------------------------------------------------------

@pytest.mark.parametrize("grant_type", ["password", "implicit", "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                        "urn:ietf:params:oauth:grant-type:device_code", "", "AUTHORIZATION_CODE",
                                        "t\u00e9", 'a"b'])
def test_unsupported_grant_types(op, rp, user, grant_type):
    client, secret = rp
    r = op.token(client, secret, {"grant_type": grant_type, "username": user.nir, "password": "Motdepasse-2024"})
    assert_oauth_error(r, "unsupported_grant_type")


def test_missing_grant_type(op, rp):
    client, secret = rp
    assert_oauth_error(op.token(client, secret, {}), "unsupported_grant_type")


def test_client_not_registered_for_refresh_gets_no_refresh_token(op, make_client, user):
    client, secret = make_client(grant_types=("authorization_code",))
    tokens, _ = op.tokens(client, secret, user)
    assert "refresh_token" not in tokens


def test_client_not_registered_for_authorization_code_is_unauthorized(op, make_client, rp, user):
    client, secret = make_client(grant_types=("client_credentials",))
    r = op.token(client, secret, {"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT,
                                  "code_verifier": new_verifier()})
    assert_oauth_error(r, "unauthorized_client")


def test_client_credentials(op, make_client):
    client, secret = make_client(grant_types=("client_credentials",), scope="openid profile email affiliation")
    r = op.token(client, secret, {"grant_type": "client_credentials", "scope": "openid profile email admin"})
    assert r.status_code == 200, r.text
    token = r.json()
    assert "refresh_token" not in token and "id_token" not in token
    assert not token.get("scope"), "no scope about a person, and none the client is not registered for"
    # No person behind it: userinfo refuses it.
    r = op.userinfo(token["access_token"])
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    info = op.introspect(client, secret, token["access_token"]).json()
    assert info["active"] is True and "sub" not in info and info["client_id"] == client.client_id
    stored = db.session.scalar(db.select(Token))
    assert stored.user_id is None and stored.grant_id is None and stored.scope == ""


def test_client_credentials_needs_registration_and_a_secret(op, rp, make_client):
    client, secret = rp  # registered for authorization_code and refresh_token only
    assert_oauth_error(op.token(client, secret, {"grant_type": "client_credentials"}), "unauthorized_client")
    public, _ = make_client(public=True, grant_types=("client_credentials",))
    assert_oauth_error(op.token(public, None, {"grant_type": "client_credentials"}), "invalid_client", 401)


# --- The ID token ------------------------------------------------------------------------------

def test_id_token_header_and_claims(op, rp, user):
    client, secret = rp
    before = int(time.time())
    tokens, login = op.tokens(client, secret, user)
    header, _ = jwt_parts(tokens["id_token"])
    assert header["alg"] == "RS256" and header["kid"] and header.get("typ") == "JWT"
    published = {k["kid"]: k for k in requests.get(f"{op.url}/jwks.json", timeout=10).json()["keys"]}
    assert published[header["kid"]]["alg"] == "RS256"

    claims = verify(op, tokens["id_token"], client).claims
    assert {"iss", "aud", "sub", "exp", "iat", "auth_time", "nonce", "acr", "amr", "at_hash"} <= set(claims)
    assert claims["iss"] == op.url and claims["aud"] == client.client_id
    assert claims["nonce"] == login.params["nonce"]
    assert before - 1 <= claims["auth_time"] <= claims["iat"] <= int(time.time()) + 1
    assert claims["exp"] - claims["iat"] == 600
    # acr and amr say how this login went (RFC 8176), as recorded for the grant.
    grant = db.session.scalar(db.select(Grant))
    assert claims["acr"] == grant.acr and claims["acr"] in ("urn:idp:acr:pwd", "urn:idp:acr:device", "urn:idp:acr:mfa")
    assert claims["amr"] == grant.amr and "pwd" in claims["amr"]
    from authlib.oidc.core.util import create_half_hash

    assert claims["at_hash"] == create_half_hash(tokens["access_token"], "RS256").decode()
    assert "nir" not in claims and user.nir not in tokens["id_token"]


def test_id_token_es256_for_a_client_registered_with_it(op, make_client, user):
    client, secret = make_client(alg="ES256")
    tokens, _ = op.tokens(client, secret, user)
    header, _ = jwt_parts(tokens["id_token"])
    assert header["alg"] == "ES256" and header["kid"]
    published = {k["kid"]: k for k in requests.get(f"{op.url}/jwks.json", timeout=10).json()["keys"]}
    assert published[header["kid"]]["kty"] == "EC"
    claims = verify(op, tokens["id_token"], client).claims
    from authlib.oidc.core.util import create_half_hash

    assert claims["at_hash"] == create_half_hash(tokens["access_token"], "ES256").decode()


def test_id_token_signed_by_the_active_key_after_rotation(op, rp, user):
    from idp.models import SigningKey
    from idp.oidc import keys

    keys.rotate()
    active = db.session.scalar(db.select(SigningKey).where(SigningKey.alg == "RS256", SigningKey.status == "active"))
    client, secret = rp
    tokens, _ = op.tokens(client, secret, user)
    assert jwt_parts(tokens["id_token"])[0]["kid"] == active.kid
    verify(op, tokens["id_token"], client)


def test_auth_time_is_the_login_time_not_the_token_time(op, rp, user):
    """Log in, then (ten minutes later) single sign-on: the ID token tells when the person logged in."""
    client, secret = rp
    op.login(client, user)
    db.session.execute(db.update(BrowserSession).values(auth_time=BrowserSession.auth_time - 600))
    db.session.commit()
    login_time = db.session.scalar(db.select(BrowserSession.auth_time))

    login = op.login(client, user)  # answered at once from the session
    assert login.location.startswith(REDIRECT)
    tokens = op.exchange(client, secret, login).json()
    claims = verify(op, tokens["id_token"], client).claims
    assert claims["auth_time"] == login_time
    assert claims["iat"] - claims["auth_time"] >= 600

    refreshed = op.refresh(client, secret, tokens["refresh_token"]).json()
    again = verify(op, refreshed["id_token"], client).claims
    assert again["auth_time"] == login_time
    assert again["sub"] == claims["sub"]
    assert "nonce" not in again


def test_sub_is_pairwise(op, make_client, user, make_user):
    client_a, secret_a = make_client()
    client_b, secret_b = make_client()
    a1, _ = op.tokens(client_a, secret_a, user)
    a2, _ = op.tokens(client_a, secret_a, user)
    b1, _ = op.tokens(client_b, secret_b, user)
    sub_a1 = verify(op, a1["id_token"], client_a).claims["sub"]
    sub_a2 = verify(op, a2["id_token"], client_a).claims["sub"]
    sub_b1 = verify(op, b1["id_token"], client_b).claims["sub"]
    assert sub_a1 == sub_a2, "stable for one client"
    assert sub_a1 != sub_b1, "two clients cannot correlate"
    for sub in (sub_a1, sub_b1):
        assert sub not in (user.nir, str(user.id), user.nir[:13])
        assert user.nir not in sub
        assert 16 <= len(sub) <= 255
    assert op.userinfo(a1["access_token"]).json()["sub"] == sub_a1
    assert op.userinfo(b1["access_token"]).json()["sub"] == sub_b1

    other = make_user()
    op.browser.cookies.clear()
    o1, _ = op.tokens(client_a, secret_a, other)
    assert verify(op, o1["id_token"], client_a).claims["sub"] != sub_a1


# --- Scopes and claims ------------------------------------------------------------------------

def test_scope_not_registered_is_dropped(op, make_client, user):
    client, secret = make_client(scope="openid profile")
    tokens, _ = op.tokens(client, secret, user, scope="openid profile email affiliation unknown")
    assert set(tokens["scope"].split()) == {"openid", "profile"}
    info = op.userinfo(tokens["access_token"]).json()
    assert info["given_name"] == "Jeanne"
    assert "email" not in info and "email_verified" not in info and "affiliation" not in info
    # The ID token carries the authentication only (OIDC Core §5.4; tests/test_oidf_basic_op.py).
    claims = verify(op, tokens["id_token"], client).claims
    assert not {"given_name", "email", "email_verified", "affiliation"} & set(claims)


@pytest.mark.parametrize(
    "scope, present, absent",
    [
        ("openid", {"sub"}, {"given_name", "family_name", "birthdate", "gender", "email", "affiliation"}),
        ("openid profile", {"sub", "given_name", "family_name", "birthdate", "gender"}, {"email", "affiliation"}),
        ("openid email", {"sub", "email", "email_verified"}, {"given_name", "affiliation"}),
        ("openid affiliation", {"sub", "affiliation"}, {"given_name", "email"}),
    ],
)
def test_claims_by_scope(op, rp, user, scope, present, absent):
    client, secret = rp
    tokens, _ = op.tokens(client, secret, user, scope=scope)
    info = op.userinfo(tokens["access_token"]).json()
    assert present <= set(info), info
    assert not absent & set(info), info
    if "profile" in scope:
        assert info["given_name"] == "Jeanne" and info["family_name"] == "Martin"
        assert info["birthdate"] == "1985-05-12" and info["gender"] == "female"
    if "email" in scope:
        assert info["email"] == user.email and info["email_verified"] is True
    if "affiliation" in scope:
        aff = info["affiliation"]
        assert aff["regime"] == {"code": "01", "name": aff["regime"]["name"]} and aff["regime"]["name"]
        assert aff["caisse"] == "CPAM des Yvelines"
    claims = verify(op, tokens["id_token"], client).claims
    assert not (absent | present - {"sub"}) & set(claims), "the person's claims are at UserInfo only"


@pytest.mark.parametrize("name", ["grant_type", "code", "redirect_uri", "code_verifier", "client_id"])
def test_repeated_token_parameter_is_invalid_request(op, make_client, user, name):
    """RFC 6749 §3.2: parameters are sent once; a second value is refused, not ignored."""
    client, secret = make_client(public=name == "client_id")
    login = op.login(client, user)
    body = [("grant_type", "authorization_code"), ("code", login.code), ("redirect_uri", REDIRECT),
            ("code_verifier", login.verifier)]
    if name == "client_id":
        body += [("client_id", client.client_id), ("client_id", client.client_id)]
    else:
        body.append((name, dict(body)[name]))
    auth = None if client.is_public else (client.client_id, secret)
    r = requests.post(f"{op.url}/token", data=body, auth=auth, timeout=10)
    assert_oauth_error(r, "invalid_request")
    single = [pair for i, pair in enumerate(body) if pair not in body[:i]]
    assert requests.post(f"{op.url}/token", data=single, auth=auth, timeout=10).status_code == 200
