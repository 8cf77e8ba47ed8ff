"""Signing key rotation on a running server, and the private keys' encryption at rest."""

from __future__ import annotations

import base64
import secrets

import pytest
import requests
from cryptography.exceptions import InvalidTag
from sqlalchemy import select

from idp.extensions import db
from idp.models import SigningKey
from idp.oidc import keys
from oidc_flows import jwt_parts
from oidc_rp import RelyingParty, log_in


def active(alg: str) -> SigningKey:
    return db.session.scalar(select(SigningKey).where(SigningKey.alg == alg, SigningKey.status == "active"))


def id_token(rp: RelyingParty, browser, user) -> tuple[str, dict]:
    callback = log_in(browser, rp.authorization_url(), user)
    assert callback.startswith(rp.redirect_uri), callback
    token = rp.fetch_token(callback)
    return token["id_token"], token


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_rotation_without_restart(live_server, make_user, make_client, browser, new_browser, alg):
    user = make_user()
    client, secret = make_client(alg=alg)
    rp = RelyingParty(live_server.url, client, secret)

    old_kid = active(alg).kid
    old_token, old_response = id_token(rp, browser, user)
    assert jwt_parts(old_token)[0]["kid"] == old_kid
    rp.verify_id_token(old_token, old_response["access_token"])

    changes = dict((a, (old, new)) for a, old, new in keys.rotate())
    db.session.expire_all()
    new_kid = active(alg).kid
    assert changes[alg] == (old_kid, new_kid) and new_kid != old_kid
    assert db.session.get(SigningKey, old_kid).status == "retired"

    # The JWKS now served still publishes the old key, so the old ID token still verifies.
    published = {k["kid"] for k in requests.get(rp.metadata["jwks_uri"], timeout=10).json()["keys"]}
    assert {old_kid, new_kid} <= published
    verified = rp.verify_id_token(old_token, old_response["access_token"])
    assert verified.header["kid"] == old_kid

    # The same running server signs the next login with the new key.
    new_token, new_response = id_token(rp, new_browser(), user)
    header = jwt_parts(new_token)[0]
    assert header["kid"] == new_kid
    assert header["alg"] == alg
    rp.verify_id_token(new_token, new_response["access_token"])


def test_private_keys_are_encrypted_at_rest(app, monkeypatch):
    rows = db.session.scalars(select(SigningKey)).all()
    assert rows
    for row in rows:
        assert b"PRIVATE KEY" not in row.private_key_encrypted
        assert b"-----BEGIN" not in row.private_key_encrypted
        assert all(name not in row.public_jwk for name in ("d", "p", "q", "dp", "dq", "qi"))
        assert b"PRIVATE KEY" in keys._decrypt(row.kid, row.private_key_encrypted)

    row = active("RS256")
    # The kid is bound to the ciphertext: it cannot be moved to another row.
    other = next(r for r in rows if r.kid != row.kid)
    with pytest.raises(InvalidTag):
        keys._decrypt(other.kid, row.private_key_encrypted)

    # Another key-encryption secret cannot decrypt it, nor sign with it.
    wrong = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    monkeypatch.setitem(app.config, "IDP_KEY_SECRET", wrong)
    with pytest.raises(InvalidTag):
        keys._decrypt(row.kid, row.private_key_encrypted)
    with pytest.raises(InvalidTag):
        keys.signing_key("RS256")


def test_new_keys_are_encrypted_too(app):
    keys.rotate(("ES256",))
    row = db.session.scalar(select(SigningKey).where(SigningKey.alg == "ES256", SigningKey.status == "next"))
    assert b"PRIVATE KEY" not in row.private_key_encrypted
    assert keys.signing_key("ES256").kid == active("ES256").kid


@pytest.mark.parametrize("settings", [{"KEY_CACHE_SECONDS": 1}], ids=["cache-1s"])
def test_a_rotation_made_by_another_host_is_seen_within_the_key_cache_delay(app, live_server, settings):
    """Each process reads the key table at most every IDP_KEY_CACHE_SECONDS; another host's rotation shows after."""
    import time

    served = requests.get(live_server.url + "/jwks.json", timeout=10)
    before = {k["kid"] for k in served.json()["keys"]}
    # Another host rotates: straight in the database, behind this process's back.
    with db.engine.begin() as conn:
        for alg in ("RS256", "ES256"):
            conn.execute(SigningKey.__table__.update()
                         .where(SigningKey.alg == alg, SigningKey.status == "active").values(status="retired"))
            conn.execute(SigningKey.__table__.update()
                         .where(SigningKey.alg == alg, SigningKey.status == "next").values(status="active"))
    time.sleep(1.2)
    with app.test_request_context():
        assert keys.signing_key("RS256").kid == active("RS256").kid
    new = {k["kid"] for k in requests.get(live_server.url + "/jwks.json", timeout=10).json()["keys"]}
    assert new == before  # the same keys stay published: next became active, active retired


@pytest.mark.parametrize("path", ["/jwks.json", "/.well-known/openid-configuration"])
def test_public_documents_carry_an_etag_and_answer_304(live_server, path):
    first = requests.get(live_server.url + path, timeout=10)
    assert first.status_code == 200 and first.headers["ETag"]
    assert first.headers["Content-Type"] == "application/json"
    assert "public" in first.headers["Cache-Control"] and "max-age=300" in first.headers["Cache-Control"]
    again = requests.get(live_server.url + path, headers={"If-None-Match": first.headers["ETag"]}, timeout=10)
    assert again.status_code == 304 and again.content == b""
    other = requests.get(live_server.url + path, headers={"If-None-Match": '"other"'}, timeout=10)
    assert other.status_code == 200 and other.json() == first.json()
