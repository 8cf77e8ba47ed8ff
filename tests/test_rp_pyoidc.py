"""pyoidc (``oic``), a strict server-side OpenID Connect library written by others, as a confidential client.

Over real HTTP to the served provider, through the real French login pages (password,
then the security code read from the test SMTP server): discovery, authorization
request, token exchange with ``client_secret_basic``, ID token verification by pyoidc
itself (signature from the JWKS, ``iss``, ``aud``, ``exp``, ``nonce``), userinfo.

* with PKCE (the default client policy), with or without a nonce;
* without PKCE, for a client registered ``--pkce optional`` (what mod_auth_openidc
  2.4 and the OpenID Foundation's Basic OP plan send): then with a nonce (RFC 9700 §2.1.1);
* refused without PKCE for a default client, and for a public client whatever its flag.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import pytest

oic = pytest.importorskip("oic")

from oic.oic import Client as PyoidcClient  # noqa: E402
from oic.oic.message import AuthorizationResponse, OpenIDSchema, RegistrationResponse  # noqa: E402
from oic.utils.authn.client import CLIENT_AUTHN_METHOD  # noqa: E402

from idp.extensions import db  # noqa: E402
from oidc_flows import query  # noqa: E402
from oidc_rp import log_in  # noqa: E402

REDIRECT = "https://rp.exemple.fr/oidc/callback"


def pyoidc_client(issuer: str, client, secret: str | None) -> PyoidcClient:
    rp = PyoidcClient(client_authn_method=CLIENT_AUTHN_METHOD)
    rp.provider_config(issuer)  # discovery; pyoidc checks that the issuer matches
    registration = {"client_id": client.client_id, "redirect_uris": list(client.redirect_uris)}
    if secret:
        registration["client_secret"] = secret
    rp.store_registration_info(RegistrationResponse(**registration))
    return rp


def authorization_url(rp: PyoidcClient, pkce: bool, nonce: bool) -> tuple[str, dict, str | None]:
    args = {"client_id": rp.client_id, "response_type": "code", "scope": ["openid", "profile", "email"],
            "redirect_uri": REDIRECT, "state": secrets.token_urlsafe(16)}
    verifier = None
    if nonce:
        args["nonce"] = secrets.token_urlsafe(16)
    if pkce:
        challenge, verifier = rp.add_code_challenge()  # S256, pyoidc's own
        args.update(challenge)
    request = rp.construct_AuthorizationRequest(request_args=args)
    if not nonce:
        request.pop("nonce", None)  # pyoidc adds one on its own only for implicit flows; be sure
    return request.request(rp.authorization_endpoint), request, verifier


def log_in_with_pyoidc(rp, browser, user, pkce: bool, nonce: bool):
    url, request, verifier = authorization_url(rp, pkce, nonce)
    assert ("code_challenge=" in url) == pkce and ("nonce=" in url) == nonce
    callback = log_in(browser, url, user)
    assert callback.startswith(REDIRECT + "?"), callback
    response = rp.parse_response(AuthorizationResponse, info=urlsplit(callback).query, sformat="urlencoded")
    assert response["state"] == request["state"]
    token_args = {"code": response["code"], "redirect_uri": REDIRECT}
    if verifier:
        token_args["code_verifier"] = verifier
    tokens = rp.do_access_token_request(state=response["state"], request_args=token_args,
                                        authn_method="client_secret_basic")
    id_token = tokens["id_token"]  # verified by pyoidc on parsing: signature (JWKS), iss, aud, exp
    rp.verify_id_token(id_token, request)  # and the nonce of the request, if it sent one
    assert ("nonce" in id_token) == nonce
    # pyoidc's default puts the token in a POST body (RFC 6750 §2.2, another part of issue 9): the header here.
    info = rp.do_user_info_request(method="GET", state=response["state"], behavior="use_authorization_header")
    assert isinstance(info, OpenIDSchema)
    assert info["sub"] == id_token["sub"]
    assert info["email"] == user.email
    return tokens, info


@pytest.fixture
def confidential(make_client):
    return make_client(redirect_uris=(REDIRECT,))


def test_pyoidc_with_pkce_and_nonce(live_server, confidential, browser, user):
    client, secret = confidential
    log_in_with_pyoidc(pyoidc_client(live_server.url, client, secret), browser, user, pkce=True, nonce=True)


def test_pyoidc_with_pkce_without_nonce(live_server, confidential, browser, user):
    """OIDC Core §3.1.2.1: the nonce is optional when PKCE protects the code."""
    client, secret = confidential
    log_in_with_pyoidc(pyoidc_client(live_server.url, client, secret), browser, user, pkce=True, nonce=False)


def test_pyoidc_without_pkce_for_a_client_registered_pkce_optional(live_server, app, confidential, browser, user):
    client, secret = confidential
    runner = app.test_cli_runner()
    r = runner.invoke(args=["clients", "update", client.client_id, "--pkce", "optional"])
    assert r.exit_code == 0, r.output
    db.session.expire_all()
    log_in_with_pyoidc(pyoidc_client(live_server.url, client, secret), browser, user, pkce=False, nonce=True)

    # Without PKCE the nonce is what binds the ID token to the request: required (RFC 9700 §2.1.1).
    rp = pyoidc_client(live_server.url, client, secret)
    url, request, _ = authorization_url(rp, pkce=False, nonce=False)
    answer = query(browser.get(url, allow_redirects=False, timeout=10).headers["Location"])
    assert answer["error"] == "invalid_request" and answer["state"] == request["state"]


def test_pyoidc_without_pkce_is_refused_for_a_default_client(live_server, confidential, browser):
    client, secret = confidential
    rp = pyoidc_client(live_server.url, client, secret)
    url, request, _ = authorization_url(rp, pkce=False, nonce=True)
    answer = query(browser.get(url, allow_redirects=False, timeout=10).headers["Location"])
    assert answer["error"] == "invalid_request" and "PKCE" in answer["error_description"]
    assert answer["state"] == request["state"] and answer["iss"] == live_server.url


def test_pyoidc_without_pkce_is_refused_for_a_public_client(live_server, make_client, browser):
    client, _ = make_client(redirect_uris=(REDIRECT,), public=True)
    client.pkce_required = False  # even set by hand in the database: a public client always needs PKCE
    db.session.commit()
    rp = pyoidc_client(live_server.url, client, None)
    url, request, _ = authorization_url(rp, pkce=False, nonce=True)
    answer = query(browser.get(url, allow_redirects=False, timeout=10).headers["Location"])
    assert answer["error"] == "invalid_request" and "PKCE" in answer["error_description"]
