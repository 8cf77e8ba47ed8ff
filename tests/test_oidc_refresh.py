"""Refresh tokens: rotated on every use, and a reused one revokes the whole grant (RFC 9700 §4.14.2)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.extensions import db
from idp.models import Token, utcnow
from oidc_flows import assert_oauth_error


def claims_of(op, id_token: str) -> dict:
    jwks = KeySet.import_key_set(requests.get(f"{op.url}/jwks.json", timeout=10).json())
    return jwt.decode(id_token, jwks, algorithms=["RS256", "ES256"]).claims


def test_refresh_rotates_the_refresh_token(op, rp, user):
    client, secret = rp
    tokens, _ = op.tokens(client, secret, user)
    r = op.refresh(client, secret, tokens["refresh_token"])
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    new = r.json()
    assert new["refresh_token"] and new["refresh_token"] != tokens["refresh_token"]
    assert new["access_token"] != tokens["access_token"]
    assert op.userinfo(new["access_token"]).status_code == 200
    # The new one works, once.
    newer = op.refresh(client, secret, new["refresh_token"])
    assert newer.status_code == 200
    assert newer.json()["refresh_token"] not in (tokens["refresh_token"], new["refresh_token"])


def test_reused_refresh_token_revokes_the_whole_grant(op, rp, user):
    client, secret = rp
    first, _ = op.tokens(client, secret, user)
    second = op.refresh(client, secret, first["refresh_token"]).json()
    third = op.refresh(client, secret, second["refresh_token"]).json()
    assert op.userinfo(third["access_token"]).status_code == 200

    # An attacker (or a confused client) plays an old refresh token again.
    assert_oauth_error(op.refresh(client, secret, first["refresh_token"]), "invalid_grant")

    # Every token of the family is dead, the newest included.
    for tokens in (first, second, third):
        assert op.userinfo(tokens["access_token"]).status_code == 401
    assert_oauth_error(op.refresh(client, secret, third["refresh_token"]), "invalid_grant")
    assert op.is_active(client, secret, third["refresh_token"]) is False
    assert op.is_active(client, secret, third["access_token"]) is False


def test_reuse_does_not_touch_the_same_users_other_grants(op, rp, user):
    client, secret = rp
    kept, _ = op.tokens(client, secret, user)
    stolen, _ = op.tokens(client, secret, user)
    op.refresh(client, secret, stolen["refresh_token"])
    assert_oauth_error(op.refresh(client, secret, stolen["refresh_token"]), "invalid_grant")
    assert op.userinfo(kept["access_token"]).status_code == 200
    assert op.refresh(client, secret, kept["refresh_token"]).status_code == 200


def test_refresh_token_is_bound_to_its_client(op, rp, make_client, user):
    client, secret = rp
    other, other_secret = make_client()
    tokens, _ = op.tokens(client, secret, user)
    assert_oauth_error(op.refresh(other, other_secret, tokens["refresh_token"]), "invalid_grant")
    # Another client's attempt is not a reuse by the owner: the grant lives on.
    assert op.refresh(client, secret, tokens["refresh_token"]).status_code == 200


def test_refresh_needs_client_authentication(op, rp, user):
    client, secret = rp
    tokens, _ = op.tokens(client, secret, user)
    assert_oauth_error(op.refresh(client, "wrong", tokens["refresh_token"]), "invalid_client", 401)
    assert_oauth_error(op.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                                               "client_id": client.client_id}), "invalid_client", 401)
    assert op.refresh(client, secret, tokens["refresh_token"]).status_code == 200


def test_public_client_refresh(op, make_client, user):
    client, _ = make_client(public=True)
    tokens, _ = op.tokens(client, None, user)
    r = op.refresh(client, None, tokens["refresh_token"])
    assert r.status_code == 200, r.text
    assert_oauth_error(op.refresh(client, None, tokens["refresh_token"]), "invalid_grant")
    assert op.userinfo(r.json()["access_token"]).status_code == 401


def test_expired_refresh_token_is_refused(op, rp, user):
    client, secret = rp
    tokens, _ = op.tokens(client, secret, user)
    db.session.execute(db.update(Token).values(refresh_expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert_oauth_error(op.refresh(client, secret, tokens["refresh_token"]), "invalid_grant")


def test_refreshing_never_goes_past_the_grant_lifetime(op, rp, user, app):
    """Rotation cannot keep a grant alive for ever: after GRANT_LIFETIME the person logs in again."""
    from idp.models import Grant

    client, secret = rp
    tokens, _ = op.tokens(client, secret, user)
    lifetime = app.config["IDP_GRANT_LIFETIME"]
    # A grant about to end: the new refresh token's expiry is capped at the grant's end.
    db.session.execute(db.update(Grant).values(created_at=utcnow() - timedelta(seconds=lifetime - 60)))
    db.session.commit()
    r = op.refresh(client, secret, tokens["refresh_token"])
    assert r.status_code == 200, r.text
    newest = db.session.scalar(db.select(Token).order_by(Token.id.desc()))
    db.session.refresh(newest)
    grant_end = newest.grant.created_at + timedelta(seconds=lifetime)
    assert newest.refresh_expires_at <= grant_end
    # Past its end, even a fresh, unused refresh token is refused.
    db.session.execute(db.update(Grant).values(created_at=utcnow() - timedelta(seconds=lifetime + 1)))
    db.session.commit()
    assert_oauth_error(op.refresh(client, secret, r.json()["refresh_token"]), "invalid_grant")


@pytest.mark.parametrize("value", ["", "inconnu", "x" * 300, "\u00e9\x00"])
def test_unknown_refresh_token(op, rp, value):
    client, secret = rp
    assert_oauth_error(op.refresh(client, secret, value), "invalid_grant")


def test_missing_refresh_token_is_invalid_request(op, rp):
    client, secret = rp
    assert_oauth_error(op.token(client, secret, {"grant_type": "refresh_token"}), "invalid_request")


def test_access_token_is_not_a_refresh_token(op, rp, user):
    client, secret = rp
    tokens, _ = op.tokens(client, secret, user)
    assert_oauth_error(op.refresh(client, secret, tokens["access_token"]), "invalid_grant")


def test_refresh_issues_a_new_id_token_without_nonce_same_sub_and_auth_time(op, rp, user):
    client, secret = rp
    tokens, login = op.tokens(client, secret, user)
    original = claims_of(op, tokens["id_token"])
    refreshed = op.refresh(client, secret, tokens["refresh_token"]).json()
    assert refreshed["id_token"] != tokens["id_token"]
    new = claims_of(op, refreshed["id_token"])
    assert "nonce" not in new
    assert new["sub"] == original["sub"]
    assert new["auth_time"] == original["auth_time"]
    assert new["aud"] == client.client_id and new["iss"] == op.url
    assert new["acr"] == original["acr"] and new["amr"] == original["amr"]
    from authlib.oidc.core.util import create_half_hash

    assert new["at_hash"] == create_half_hash(refreshed["access_token"], "RS256").decode()


def test_refresh_can_narrow_but_not_widen_the_scope(op, make_client, user):
    client, secret = make_client()
    tokens, _ = op.tokens(client, secret, user, scope="openid profile")
    assert_oauth_error(op.refresh(client, secret, tokens["refresh_token"], scope="openid profile email"),
                       "invalid_scope")
    narrowed = op.refresh(client, secret, tokens["refresh_token"], scope="openid")
    assert narrowed.status_code == 200, narrowed.text
    body = narrowed.json()
    assert body["scope"] == "openid"
    info = op.userinfo(body["access_token"]).json()
    assert "given_name" not in info


def test_token_without_openid_scope_is_refused_by_userinfo(op, rp, user):
    client, secret = rp
    tokens, _ = op.tokens(client, secret, user)
    narrowed = op.refresh(client, secret, tokens["refresh_token"], scope="profile").json()
    assert "id_token" not in narrowed
    r = op.userinfo(narrowed["access_token"])
    assert r.status_code == 403
    assert r.json()["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]


def test_concurrent_refresh_with_one_token(op, rp, user):
    """Exactly one winner; a parallel use is a reuse, and the family is revoked."""
    client, secret = rp
    tokens, _ = op.tokens(client, secret, user)
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: op.refresh(client, secret, tokens["refresh_token"]), range(8)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 1, statuses
    assert all(s in (200, 400) for s in statuses), statuses
    for r in responses:
        if r.status_code == 200:
            assert op.userinfo(r.json()["access_token"]).status_code == 401
