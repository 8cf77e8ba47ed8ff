"""A relying party for the tests: Authlib's OAuth 2 / OIDC client over real HTTP."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlparse

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet

from conftest import PASSWORD


class RelyingParty:
    def __init__(self, issuer: str, client, secret: str | None, redirect_uri: str | None = None,
                 scope: str = "openid profile email affiliation"):
        self.issuer = issuer
        self.metadata = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
        self.client_id = client.client_id
        self.redirect_uri = redirect_uri or client.redirect_uris[0]
        self.session = OAuth2Session(
            client_id=client.client_id,
            client_secret=secret,
            scope=scope,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic" if secret else "none",
        )
        self.nonce = None
        self.state = None
        self.code_verifier = None

    def authorization_url(self, **extra) -> str:
        self.nonce = secrets.token_urlsafe(16)
        self.code_verifier = secrets.token_urlsafe(48)
        url, self.state = self.session.create_authorization_url(
            self.metadata["authorization_endpoint"], nonce=self.nonce, code_verifier=self.code_verifier, **extra
        )
        return url

    def fetch_token(self, callback_url: str) -> dict:
        return self.session.fetch_token(
            self.metadata["token_endpoint"],
            authorization_response=callback_url,
            code_verifier=self.code_verifier,
            state=self.state,
        )

    def jwks(self) -> KeySet:
        return KeySet.import_key_set(requests.get(self.metadata["jwks_uri"], timeout=10).json())

    def verify_id_token(self, id_token: str, access_token: str | None = None, nonce: str | None = "use-own"):
        token = jwt.decode(id_token, self.jwks(), algorithms=self.metadata["id_token_signing_alg_values_supported"])
        claims = CodeIDToken(
            token.claims,
            token.header,
            options={"iss": {"essential": True, "value": self.issuer}, "aud": {"essential": True, "value": self.client_id}},
            params={"nonce": self.nonce if nonce == "use-own" else nonce, "access_token": access_token},
        )
        claims.validate(leeway=5)
        return token


def callback_params(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}


def log_in(browser, authorize_url: str, user, password: str = PASSWORD, remember: bool = False) -> str:
    """Follow the authorization request through the login journey; return where it ends.

    That is the callback URL at the relying party (or the login page's response
    when the journey stops on a case page: the caller then asserts on it).
    """
    r = browser.get(authorize_url, allow_redirects=False)
    assert r.status_code in (302, 303), r.text[:500]
    location = r.headers["Location"]
    base = authorize_url.split("/authorize")[0]
    if not location.startswith("http"):
        location = base + location
    if "/connexion" not in location:
        return location  # answered at once (single sign-on)
    r = browser.finish_login(location, user, password, remember=remember)
    assert r.status_code == 303, r.text[:800]  # the answer to the last step's POST
    return r.headers["Location"]
