"""End to end: a real OIDC client library talks HTTP to the served provider."""

from __future__ import annotations

import requests

from oidc_rp import RelyingParty, callback_params, log_in


def test_full_flow(live_server, make_user, make_client, browser):
    user = make_user()
    client, secret = make_client()
    rp = RelyingParty(live_server.url, client, secret)
    callback = log_in(browser, rp.authorization_url(), user.nir)
    params = callback_params(callback)
    assert params["iss"] == live_server.url
    assert params["state"] == rp.state
    token = rp.fetch_token(callback)
    id_token = rp.verify_id_token(token["id_token"], token["access_token"])
    assert id_token.claims["amr"] == ["pwd"]
    info = requests.get(rp.metadata["userinfo_endpoint"], headers={"Authorization": f"Bearer {token['access_token']}"}).json()
    assert info["sub"] == id_token.claims["sub"]
    assert info["given_name"] == "Jeanne"
