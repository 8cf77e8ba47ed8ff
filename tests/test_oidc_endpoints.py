"""Discovery, JWKS and UserInfo: what the provider publishes and who may read a person's claims."""

from __future__ import annotations

import pytest
import requests
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata

from idp.extensions import db
from idp.models import SigningKey
from idp.oidc import keys

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


# --- Discovery --------------------------------------------------------------------------------

def test_discovery_document(live_server, op):
    r = requests.get(f"{live_server.url}/.well-known/openid-configuration", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    meta = r.json()
    iss = live_server.url
    assert meta["issuer"] == iss
    assert meta["authorization_endpoint"] == f"{iss}/authorize"
    assert meta["token_endpoint"] == f"{iss}/token"
    assert meta["userinfo_endpoint"] == f"{iss}/userinfo"
    assert meta["jwks_uri"] == f"{iss}/jwks.json"
    assert meta["revocation_endpoint"] == f"{iss}/revoke"
    assert meta["introspection_endpoint"] == f"{iss}/introspect"
    assert meta["end_session_endpoint"] == f"{iss}/logout"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert meta["response_modes_supported"] == ["query"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["subject_types_supported"] == ["pairwise"]
    assert set(meta["id_token_signing_alg_values_supported"]) == {"RS256", "ES256"}
    assert "none" not in meta["id_token_signing_alg_values_supported"]
    assert "implicit" not in meta["grant_types_supported"] and "password" not in meta["grant_types_supported"]
    assert meta["request_parameter_supported"] is False
    assert meta["request_uri_parameter_supported"] is False
    assert "none" not in meta["introspection_endpoint_auth_methods_supported"]
    # Every endpoint it names answers on this server.
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                 "revocation_endpoint", "introspection_endpoint", "end_session_endpoint"):
        assert requests.options(meta[name], timeout=10).status_code != 404, name

    # Authlib's validators of RFC 8414 and OpenID Connect Discovery 1.0 accept it.
    AuthorizationServerMetadata(meta).validate()
    OpenIDProviderMetadata(meta).validate()


def test_every_endpoint_shares_the_issuer_origin(live_server, op):
    meta = requests.get(f"{live_server.url}/.well-known/openid-configuration", timeout=10).json()
    for name, value in meta.items():
        if name.endswith("_endpoint") or name == "jwks_uri":
            assert value.startswith(meta["issuer"] + "/"), (name, value)


# --- JWKS -------------------------------------------------------------------------------------

def _published(live_server) -> dict[str, dict]:
    r = requests.get(f"{live_server.url}/jwks.json", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    return {k["kid"]: k for k in r.json()["keys"]}


def test_jwks_publishes_next_active_and_retired_public_keys_only(live_server, op):
    before = {k.kid: k.status for k in db.session.scalars(db.select(SigningKey))}
    assert set(before.values()) == {"next", "active"}
    keys.rotate()  # active -> retired, next -> active, a new next
    db.session.expire_all()
    after = {k.kid: k.status for k in db.session.scalars(db.select(SigningKey))}
    assert sorted(after.values()) == sorted(["retired", "active", "next"] * 2)

    published = _published(live_server)
    assert set(published) == set(after), "every next, active and retired key is published"
    for kid, jwk in published.items():
        assert not PRIVATE_MEMBERS & set(jwk), f"private member in {kid}: {sorted(jwk)}"
        assert jwk["use"] == "sig"
        assert jwk["alg"] in ("RS256", "ES256")
        assert jwk["kty"] == ("RSA" if jwk["alg"] == "RS256" else "EC")
        if jwk["kty"] == "RSA":
            assert set(jwk) >= {"n", "e"}
        else:
            assert jwk["crv"] == "P-256" and set(jwk) >= {"x", "y"}


def test_jwks_no_longer_publishes_a_removed_key(live_server, op):
    keys.rotate()
    retired = db.session.scalars(db.select(SigningKey).where(SigningKey.status == "retired")).all()
    assert retired
    keys.remove(retired[0].kid, force=True)
    assert retired[0].kid not in _published(live_server)


def test_jwks_before_any_key_exists_is_an_empty_set_not_a_500(app, web):
    """A provider whose keys are not made yet (``idp init`` not run) still serves a valid, empty JWKS."""
    db.session.execute(db.delete(SigningKey))
    db.session.commit()
    keys.forget()
    r = web.get("/jwks.json")
    assert r.status_code == 200 and r.json == {"keys": []}


# --- UserInfo ---------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "POST"])
def test_userinfo_with_bearer_header(op, make_user, make_client, method):
    user = make_user()
    client, secret = make_client()
    tokens, _ = op.tokens(client, secret, user)
    r = op.userinfo(tokens["access_token"], method)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Cache-Control"] == "no-store"
    info = r.json()
    assert info["given_name"] == "Jeanne" and info["family_name"] == "Martin"
    assert info["sub"] and info["sub"] != user.nir and info["sub"] != str(user.id)


@pytest.mark.parametrize(
    "headers, challenge_has_error",
    [
        ({}, False),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, False),
        ({"Authorization": "Token abc"}, False),
        ({"Authorization": "Bearer"}, True),
        ({"Authorization": "Bearer "}, True),
        ({"Authorization": "Bearer not-a-token"}, True),
        ({"Authorization": "Bearer " + "x" * 5000}, True),
        ({"Authorization": "bearer\tnot-a-token"}, True),
        ({"Authorization": "Bearer a b c"}, True),
    ],
    ids=["none", "basic", "other-scheme", "bearer-alone", "bearer-empty", "unknown", "huge", "tab", "spaces"],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_userinfo_refuses_missing_or_invalid_token(web, headers, challenge_has_error, method):
    """RFC 6750 §3: 401 with a Bearer challenge; an error code only when a token was sent."""
    r = web.open("/userinfo", method=method, headers=headers)
    assert r.status_code == 401, r.get_data(as_text=True)
    assert r.is_json and r.get_json()["error"] == "invalid_token", r.get_data(as_text=True)
    challenge = r.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer "), challenge
    assert ('error="invalid_token"' in challenge) is challenge_has_error, challenge


def test_userinfo_ignores_access_token_in_query_rfc6750_2_3(op, make_user, make_client):
    """RFC 6750 §2.3 (URI query) is not offered: a token there would land in access logs.

    The form body of a POST (§2.2) is accepted since issue 9 (tests/test_oidf_basic_op.py):
    this test expected it refused before; a GET with a form-like body is still refused.
    """
    user = make_user()
    client, secret = make_client()
    tokens, _ = op.tokens(client, secret, user)
    r = requests.get(f"{op.url}/userinfo", params={"access_token": tokens["access_token"]}, timeout=10)
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    r = requests.post(f"{op.url}/userinfo", params={"access_token": tokens["access_token"]}, timeout=10)
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    r = requests.get(f"{op.url}/userinfo", data={"access_token": tokens["access_token"]}, timeout=10)
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers


def test_userinfo_refuses_a_refresh_token_used_as_access_token(op, make_user, make_client):
    user = make_user()
    client, secret = make_client()
    tokens, _ = op.tokens(client, secret, user)
    r = op.userinfo(tokens["refresh_token"])
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_token"


def test_userinfo_refuses_an_expired_access_token(op, make_user, make_client):
    from idp.models import Token

    user = make_user()
    client, secret = make_client()
    tokens, _ = op.tokens(client, secret, user)
    db.session.execute(db.update(Token).values(expires_in=-1))
    db.session.commit()
    r = op.userinfo(tokens["access_token"])
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]


# --- Headers: no framing, no caching of anything personal --------------------------------------

@pytest.mark.parametrize(
    "path",
    ["/authorize", "/authorize?client_id=x", "/connexion", "/logout", "/token", "/userinfo", "/introspect", "/revoke",
     "/inconnu"],
)
def test_pages_and_protocol_answers_cannot_be_framed_or_cached(web, path):
    r = web.get(path) if path not in ("/token", "/introspect", "/revoke") else web.post(path)
    assert r.status_code != 500
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/jwks.json", "/.well-known/openid-configuration"])
def test_public_metadata_is_cacheable_and_open_to_browsers(web, path):
    r = web.get(path)
    assert r.status_code == 200
    assert "public" in r.headers["Cache-Control"] and "max-age=300" in r.headers["Cache-Control"]
    assert r.headers["Access-Control-Allow-Origin"] == "*"
