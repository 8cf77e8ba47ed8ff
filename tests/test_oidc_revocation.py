"""Revocation (RFC 7009) and introspection (RFC 7662): a client acts on, and learns about, its own tokens only."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from idp.extensions import db
from idp.models import Token, utcnow
from oidc_flows import assert_oauth_error


# --- Revocation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token"])
def test_revoking_the_access_token(op, rp, user, hint):
    client, secret = rp
    tokens, _ = op.tokens(client, secret, user)
    extra = {"token_type_hint": hint} if hint else {}
    r = op.revoke(client, secret, tokens["access_token"], **extra)
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    assert op.userinfo(tokens["access_token"]).status_code == 401
    assert op.is_active(client, secret, tokens["access_token"]) is False


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token"])
def test_revoking_the_refresh_token_revokes_its_grant(op, rp, user, hint):
    client, secret = rp
    tokens, _ = op.tokens(client, secret, user)
    rotated = op.refresh(client, secret, tokens["refresh_token"]).json()
    extra = {"token_type_hint": hint} if hint else {}
    assert op.revoke(client, secret, rotated["refresh_token"], **extra).status_code == 200
    assert_oauth_error(op.refresh(client, secret, rotated["refresh_token"]), "invalid_grant")
    for t in (tokens, rotated):
        assert op.userinfo(t["access_token"]).status_code == 401
        assert op.is_active(client, secret, t["access_token"]) is False
    assert op.is_active(client, secret, rotated["refresh_token"]) is False


def test_revoking_leaves_other_grants_alone(op, rp, user):
    client, secret = rp
    kept, _ = op.tokens(client, secret, user)
    gone, _ = op.tokens(client, secret, user)
    op.revoke(client, secret, gone["refresh_token"])
    assert op.userinfo(kept["access_token"]).status_code == 200
    assert op.refresh(client, secret, kept["refresh_token"]).status_code == 200


@pytest.mark.parametrize("value", ["inconnu", "", "x" * 300, "\u00e9"])
def test_revoking_an_unknown_token_is_200(op, rp, value):
    client, secret = rp
    r = op.revoke(client, secret, value)
    assert r.status_code == 200, r.text


def test_revoking_twice_is_200(op, rp, user):
    client, secret = rp
    tokens, _ = op.tokens(client, secret, user)
    assert op.revoke(client, secret, tokens["refresh_token"]).status_code == 200
    assert op.revoke(client, secret, tokens["refresh_token"]).status_code == 200


def test_another_clients_token_is_not_revoked(op, rp, make_client, user):
    client, secret = rp
    other, other_secret = make_client()
    tokens, _ = op.tokens(client, secret, user)
    for value in (tokens["access_token"], tokens["refresh_token"]):
        # RFC 7009 §2.1: the request is refused, and the token is left as it was.
        assert_oauth_error(op.revoke(other, other_secret, value), "invalid_grant")
    assert op.userinfo(tokens["access_token"]).status_code == 200
    assert op.refresh(client, secret, tokens["refresh_token"]).status_code == 200


def test_public_client_revokes_its_own_token(op, make_client, user):
    client, _ = make_client(public=True)
    tokens, _ = op.tokens(client, None, user)
    assert op.revoke(client, None, tokens["refresh_token"]).status_code == 200
    assert op.userinfo(tokens["access_token"]).status_code == 401


@pytest.mark.parametrize(
    "auth", [{}, {"auth": ("inconnu", "x")}, {"wrong_secret": True}], ids=["none", "unknown-client", "wrong-secret"]
)
def test_revocation_needs_client_authentication(op, rp, user, auth):
    client, secret = rp
    tokens, _ = op.tokens(client, secret, user)
    if auth.get("wrong_secret"):
        r = op.revoke(client, "wrong", tokens["access_token"])
    else:
        r = requests.post(f"{op.url}/revoke", data={"token": tokens["access_token"]}, timeout=10, **auth)
    assert_oauth_error(r, "invalid_client", 401)
    assert "WWW-Authenticate" in r.headers
    assert op.userinfo(tokens["access_token"]).status_code == 200


def test_revocation_without_token_is_invalid_request(op, rp):
    client, secret = rp
    assert_oauth_error(op.post("/revoke", client, secret, data={}), "invalid_request")


@pytest.mark.parametrize("hint", ["id_token", "bogus", "\u00e9"])
def test_revocation_ignores_an_unknown_hint(op, rp, user, hint):
    """RFC 7009 §2.1: the hint only speeds up the search; an unknown one is ignored."""
    client, secret = rp
    tokens, _ = op.tokens(client, secret, user)
    assert op.revoke(client, secret, tokens["refresh_token"], token_type_hint=hint).status_code == 200
    assert op.userinfo(tokens["access_token"]).status_code == 401


# --- Introspection -------------------------------------------------------------------------------

def test_introspection_of_own_access_token(op, rp, user):
    client, secret = rp
    tokens, _ = op.tokens(client, secret, user)
    r = op.introspect(client, secret, tokens["access_token"])
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    info = r.json()
    assert info["active"] is True
    assert info["client_id"] == client.client_id
    assert info["sub"] == op.userinfo(tokens["access_token"]).json()["sub"]
    assert set(info["scope"].split()) == {"openid", "profile", "email", "affiliation"}
    assert info["iss"] == op.url and info["token_type"] == "Bearer"
    assert info["exp"] - info["iat"] == 600
    assert user.nir not in r.text


def test_introspection_of_own_refresh_token(op, rp, user):
    client, secret = rp
    tokens, _ = op.tokens(client, secret, user)
    info = op.introspect(client, secret, tokens["refresh_token"], token_type_hint="refresh_token").json()
    assert info["active"] is True and info["client_id"] == client.client_id and info["sub"]
    op.refresh(client, secret, tokens["refresh_token"])
    assert op.is_active(client, secret, tokens["refresh_token"]) is False, "a used refresh token is inactive"


def test_introspection_of_another_clients_token_is_inactive(op, rp, make_client, user):
    client, secret = rp
    other, other_secret = make_client()
    tokens, _ = op.tokens(client, secret, user)
    for value in (tokens["access_token"], tokens["refresh_token"]):
        r = op.introspect(other, other_secret, value)
        assert r.status_code == 200
        assert r.json() == {"active": False}


@pytest.mark.parametrize("value", ["inconnu", "", "x" * 300])
def test_introspection_of_unknown_token_is_inactive(op, rp, value):
    client, secret = rp
    r = op.introspect(client, secret, value)
    assert r.status_code == 200 and r.json() == {"active": False}


def test_introspection_of_revoked_and_expired_tokens(op, rp, user):
    client, secret = rp
    revoked, _ = op.tokens(client, secret, user)
    op.revoke(client, secret, revoked["access_token"])
    assert op.introspect(client, secret, revoked["access_token"]).json() == {"active": False}

    expired, _ = op.tokens(client, secret, user)
    db.session.execute(db.update(Token).values(expires_in=-1, refresh_expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert op.introspect(client, secret, expired["access_token"]).json() == {"active": False}
    assert op.introspect(client, secret, expired["refresh_token"]).json() == {"active": False}


@pytest.mark.parametrize("method", ["none", "no-auth", "wrong-secret", "unknown-client"])
def test_introspection_is_for_authenticated_confidential_clients(op, rp, make_client, user, method):
    client, secret = rp
    tokens, _ = op.tokens(client, secret, user)
    if method == "none":
        public, _ = make_client(public=True)
        r = op.introspect(public, None, tokens["access_token"])
    elif method == "no-auth":
        r = requests.post(f"{op.url}/introspect", data={"token": tokens["access_token"]}, timeout=10)
    elif method == "wrong-secret":
        r = op.introspect(client, "wrong", tokens["access_token"])
    else:
        r = requests.post(f"{op.url}/introspect", data={"token": tokens["access_token"]},
                          auth=("inconnu", "x"), timeout=10)
    assert_oauth_error(r, "invalid_client", 401)
    assert "active" not in r.json()


def test_public_client_cannot_introspect_its_own_token(op, make_client, user):
    client, _ = make_client(public=True)
    tokens, _ = op.tokens(client, None, user)
    assert_oauth_error(op.introspect(client, None, tokens["access_token"]), "invalid_client", 401)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_introspection_client_auth_methods(op, rp, user, method):
    client, secret = rp
    tokens, _ = op.tokens(client, secret, user)
    r = op.introspect(client, secret, tokens["access_token"], method=method)
    assert r.status_code == 200 and r.json()["active"] is True


def test_introspection_without_token_is_invalid_request(op, rp):
    client, secret = rp
    assert_oauth_error(op.post("/introspect", client, secret, data={}), "invalid_request")


@pytest.mark.parametrize("hint", ["id_token", "bogus", "refresh_token"])
def test_introspection_ignores_a_wrong_or_unknown_hint(op, rp, user, hint):
    client, secret = rp
    tokens, _ = op.tokens(client, secret, user)
    r = op.introspect(client, secret, tokens["access_token"], token_type_hint=hint)
    assert r.status_code == 200 and r.json()["active"] is True and r.json()["token_type"] == "Bearer"
