"""Helpers for the protocol tests: build authorization requests, log in over real HTTP, call endpoints.

Everything here talks to the served provider (``live_server``) with ``requests``,
so that what is tested is what a relying party sees on the wire. Assertions on
the happy path are made here (a helper that should produce a code fails loudly
if it does not); the tests assert the security rules.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlparse

import requests

from conftest import PASSWORD

DEFAULT_SCOPE = "openid profile email affiliation"


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def new_verifier() -> str:
    return secrets.token_urlsafe(48)  # 64 characters of the unreserved set


def auth_params(client, redirect_uri: str | None = None, verifier: str | None = None, **overrides) -> tuple[dict, str]:
    """A valid authorization request for ``client``; ``None`` in overrides removes a parameter."""
    verifier = verifier or new_verifier()
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": redirect_uri or client.redirect_uris[0],
        "scope": DEFAULT_SCOPE,
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}, verifier


def query(location: str) -> dict[str, str]:
    """Parameters of a redirect's query, single-valued (a repeated one fails the test)."""
    parsed = parse_qs(urlparse(location).query, keep_blank_values=True)
    for name, values in parsed.items():
        assert len(values) == 1, f"{name} repeated in {location}"
    return {k: v[0] for k, v in parsed.items()}


def without_query(location: str) -> str:
    p = urlparse(location)
    return f"{p.scheme}://{p.netloc}{p.path}"


def b64url_json(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()


def jwt_parts(token: str) -> tuple[dict, dict]:
    """Header and claims of a JWT, unverified (for tests that check both sides)."""
    header, payload, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(header))), json.loads(base64.urlsafe_b64decode(pad(payload)))


@dataclass
class Login:
    """The outcome of an authorization request that reached the relying party with a code."""

    params: dict
    verifier: str
    location: str
    callback: dict = field(default_factory=dict)

    @property
    def code(self) -> str:
        return self.callback["code"]


class OP:
    """The served provider, seen by one browser and any number of relying parties."""

    def __init__(self, url: str, browser):
        self.url = url
        self.browser = browser

    # --- browser side -----------------------------------------------------------------
    def authorize(self, params: dict | list, **kwargs) -> requests.Response:
        qs = urlencode(params, doseq=True) if not isinstance(params, str) else params
        return self.browser.get(f"{self.url}/authorize?{qs}", allow_redirects=False, timeout=10, **kwargs)

    def absolute(self, location: str) -> str:
        return location if location.startswith("http") else self.url + location

    def finish_login(self, location: str, user, password: str = PASSWORD, **kwargs) -> requests.Response:
        """Fill each login page the journey shows; see ``Browser.finish_login``."""
        return self.browser.finish_login(location, user, password, **kwargs)

    def pass_login_pages(self, location: str, user, password: str = PASSWORD) -> str:
        """Where the browser goes once the login pages (if any) are passed."""
        if not location.startswith(self.url + "/connexion"):
            return location
        r = self.finish_login(location, user, password)
        assert r.status_code == 303, r.text[:800]  # the answer to the last step's POST
        return r.headers["Location"]

    def login(self, client, user, redirect_uri: str | None = None, verifier: str | None = None, **overrides) -> Login:
        """Authorization request, then the login pages if shown; returns the callback."""
        params, verifier = auth_params(client, redirect_uri, verifier, **overrides)
        r = self.authorize(params)
        assert r.status_code in (302, 303), r.text[:500]
        location = self.pass_login_pages(self.absolute(r.headers["Location"]), user)
        assert location.startswith(params["redirect_uri"]), location
        callback = query(location)
        assert "code" in callback, location
        return Login(params, verifier, location, callback)

    # --- relying party side ---------------------------------------------------------------
    @staticmethod
    def client_auth(client, secret: str | None, method: str | None = None) -> dict:
        """``requests`` keyword arguments that authenticate ``client`` at a back-channel endpoint."""
        method = method or ("client_secret_basic" if secret else "none")
        if method == "client_secret_basic":
            return {"auth": (client.client_id, secret), "data": {}}
        if method == "client_secret_post":
            return {"data": {"client_id": client.client_id, "client_secret": secret}}
        return {"data": {"client_id": client.client_id}}

    def post(self, path: str, client=None, secret: str | None = None, method: str | None = None,
             data: dict | None = None, **kwargs) -> requests.Response:
        auth = self.client_auth(client, secret, method) if client is not None else {"data": {}}
        body = {**auth.pop("data"), **(data or {})}
        return requests.post(f"{self.url}{path}", data=body, timeout=10, **auth, **kwargs)

    def token(self, client, secret, data: dict, method: str | None = None) -> requests.Response:
        return self.post("/token", client, secret, method, data)

    def exchange(self, client, secret, login: Login, method: str | None = None, **overrides) -> requests.Response:
        data = {
            "grant_type": "authorization_code",
            "code": login.code,
            "redirect_uri": login.params["redirect_uri"],
            "code_verifier": login.verifier,
        }
        data.update(overrides)
        return self.token(client, secret, {k: v for k, v in data.items() if v is not None}, method)

    def tokens(self, client, secret, user, **overrides) -> tuple[dict, Login]:
        login = self.login(client, user, **overrides)
        r = self.exchange(client, secret, login)
        assert r.status_code == 200, r.text
        return r.json(), login

    def refresh(self, client, secret, refresh_token: str, **extra) -> requests.Response:
        return self.token(client, secret, {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra})

    def userinfo(self, access_token: str, method: str = "GET") -> requests.Response:
        return requests.request(
            method, f"{self.url}/userinfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=10
        )

    def introspect(self, client, secret, token: str, method: str | None = None, **extra) -> requests.Response:
        return self.post("/introspect", client, secret, method, {"token": token, **extra})

    def revoke(self, client, secret, token: str, method: str | None = None, **extra) -> requests.Response:
        return self.post("/revoke", client, secret, method, {"token": token, **extra})

    def is_active(self, client, secret, token: str) -> bool:
        r = self.introspect(client, secret, token)
        assert r.status_code == 200, r.text
        return r.json()["active"]


def assert_oauth_error(r: requests.Response, error: str, status: int = 400) -> dict:
    """A JSON OAuth error response (RFC 6749 §5.2) with this code and status."""
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["Content-Type"].startswith("application/json"), r.headers["Content-Type"]
    body = r.json()
    assert body["error"] == error, body
    assert r.headers.get("Cache-Control") == "no-store"
    return body


def assert_error_redirect(r, redirect_uri: str, error: str, state: str | None, issuer: str,
                          status: int = 302) -> dict:
    """An error sent back to the relying party: exact redirect URI, ``error``, ``state``, ``iss`` (RFC 9207).

    ``status``: 302 for an answer to a GET, 303 for the answer to a login page's POST.
    """
    assert r.status_code == status, (r.status_code, r.text[:500] if hasattr(r, "text") else r.get_data(as_text=True)[:500])
    location = r.headers["Location"]
    assert without_query(location) == redirect_uri, location
    params = query(location)
    assert params.get("error") == error, params
    assert params.get("iss") == issuer, params
    if state is None:
        assert "state" not in params, params
    else:
        assert params.get("state") == state, params
    assert "code" not in params
    return params


def assert_error_page(r, status: int = 400) -> str:
    """A French HTML page, no redirect: the browser stays on the provider."""
    status_code = r.status_code
    text = r.text if hasattr(r, "text") and isinstance(r.text, str) else r.get_data(as_text=True)
    assert status_code == status, (status_code, text[:500])
    assert "Location" not in r.headers, r.headers.get("Location")
    assert r.headers["Content-Type"].startswith("text/html"), r.headers["Content-Type"]
    assert '<html lang="fr">' in text
    return text
