"""End to end: Authlib's OAuth 2 client, as a relying party, talks HTTP to the served provider.

discovery → authorize → login journey → token → ID token verified against the
published JWKS → userinfo → refresh (rotation, then reuse detection) →
revocation → logout. Runs on SQLite and, when configured, on PostgreSQL.
"""

from __future__ import annotations

import requests
from authlib.integrations.base_client import OAuthError

from oidc_rp import RelyingParty, callback_params, log_in


def test_whole_life_of_a_login(live_server, make_user, make_client, browser):
    user = make_user()
    client, secret = make_client()
    rp = RelyingParty(live_server.url, client, secret)
    assert rp.metadata["issuer"] == live_server.url

    callback = log_in(browser, rp.authorization_url(), user)
    params = callback_params(callback)
    assert params["iss"] == live_server.url and params["state"] == rp.state

    token = rp.fetch_token(callback)
    id_token = rp.verify_id_token(token["id_token"], token["access_token"])
    claims = id_token.claims
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "urn:idp:acr:mfa"
    assert claims["sub"] != user.nir
    assert "given_name" not in claims and "birthdate" not in claims, "names are at UserInfo only (Core §5.4)"

    userinfo = requests.get(rp.metadata["userinfo_endpoint"],
                            headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=10).json()
    assert userinfo["sub"] == claims["sub"] and userinfo["given_name"] == "Jeanne"
    assert userinfo["email"] == user.email and userinfo["email_verified"] is True
    assert userinfo["affiliation"]["regime"] == {"code": "01", "name": "Régime général"}

    # Refresh: a new refresh token and a new ID token, same subject and auth_time, no nonce.
    refreshed = rp.session.refresh_token(rp.metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    again = rp.verify_id_token(refreshed["id_token"], refreshed["access_token"], nonce=None)
    assert again.claims["sub"] == claims["sub"] and again.claims["auth_time"] == claims["auth_time"]
    assert "nonce" not in again.claims

    # Reusing the old refresh token is theft: refused, and the whole grant is revoked.
    try:
        rp.session.refresh_token(rp.metadata["token_endpoint"], refresh_token=token["refresh_token"])
        raise AssertionError("a used refresh token was accepted")
    except OAuthError as error:
        assert error.error == "invalid_grant"
    r = requests.get(rp.metadata["userinfo_endpoint"],
                     headers={"Authorization": f"Bearer {refreshed['access_token']}"}, timeout=10)
    assert r.status_code == 401

    # A new login in the same browser is single sign-on: no page, a code at once.
    callback = log_in(browser, rp.authorization_url(), user)
    fresh = rp.fetch_token(callback)

    # Revocation (RFC 7009) of the refresh token takes its access token with it.
    r = requests.post(rp.metadata["revocation_endpoint"], data={"token": fresh["refresh_token"]},
                      auth=(client.client_id, secret), timeout=10)
    assert r.status_code == 200
    r = requests.get(rp.metadata["userinfo_endpoint"],
                     headers={"Authorization": f"Bearer {fresh['access_token']}"}, timeout=10)
    assert r.status_code == 401

    # RP-initiated logout: back to the registered URI with state, and the session is over.
    r = browser.get(rp.metadata["end_session_endpoint"], params={
        "id_token_hint": fresh["id_token"], "post_logout_redirect_uri": client.post_logout_redirect_uris[0],
        "state": "au-revoir"}, allow_redirects=False, timeout=10)
    assert r.status_code == 302
    assert r.headers["Location"] == client.post_logout_redirect_uris[0] + "?state=au-revoir"
    r = browser.get(rp.authorization_url(prompt="none"), allow_redirects=False, timeout=10)
    assert callback_params(r.headers["Location"])["error"] == "login_required"
