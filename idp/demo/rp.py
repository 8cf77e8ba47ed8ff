"""The demo relying party: Authlib's Flask client, with its own cookie.

Authlib's Flask client keeps the pending request (``state``, ``nonce``, PKCE
``code_verifier``) in Flask's session. Here Flask's session is the provider's
(cookie ``idp_csrf``, for its forms), so the demo keeps its own instead: a cookie
``idp_demo`` on path ``/demo`` only, signed with the server secret (salted, so it
cannot be swapped with another signed value), HttpOnly, SameSite=Lax, one hour.
The provider never reads it and the demo never touches the provider's cookies.
The cookie is signed, not encrypted: it holds the person's own ID token, in
their own browser, which is acceptable for a demo.
"""

from __future__ import annotations

from authlib.integrations.flask_client import FlaskIntegration, OAuth
from flask import current_app, g, request
from flask.sessions import SecureCookieSession
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .credentials import SCOPE, Credentials

NAME = "ameli"
COOKIE = "idp_demo"
COOKIE_PATH = "/demo"
COOKIE_MAX_AGE = 3600
SALT = "idp-demo-relying-party"
#: Pending authorization or logout requests kept at once (the cookie must stay under 4 kB).
MAX_PENDING = 3


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=SALT)


def session() -> SecureCookieSession:
    """The demo's session for this request (loaded once from its cookie)."""
    if "idp_demo_session" not in g:
        data = {}
        raw = request.cookies.get(COOKIE)
        if raw and len(raw) < 4096:
            try:
                loaded = _serializer().loads(raw, max_age=COOKIE_MAX_AGE)
            except BadSignature:
                loaded = None
            data = loaded if isinstance(loaded, dict) else {}
        g.idp_demo_session = SecureCookieSession(data)
    return g.idp_demo_session


def save_session(response):
    """``after_request`` of the demo blueprint: write the cookie when it changed."""
    data = g.pop("idp_demo_session", None)
    if data is None or not data.modified:
        return response
    options = {
        "path": COOKIE_PATH,
        "httponly": True,
        "samesite": "Lax",
        "secure": current_app.config["IDP_ISSUER"].startswith("https://"),
    }
    if data:
        response.set_cookie(COOKIE, _serializer().dumps(dict(data)), max_age=COOKIE_MAX_AGE, **options)
    else:
        response.delete_cookie(COOKIE, **options)
    return response


class _DemoIntegration(FlaskIntegration):
    """Authlib's state storage, redirected from Flask's session to the demo's."""

    def get_state_data(self, _flask_session, state):
        return super().get_state_data(session(), state)

    def set_state_data(self, _flask_session, state, data):
        data = {k: v for k, v in data.items() if k != "url"}  # not needed back; keeps the cookie small
        own = session()
        prefix = f"_state_{self.name}_"
        pending = sorted((k for k in own if k.startswith(prefix)), key=lambda k: own[k].get("exp", 0))
        for key in pending[: max(0, len(pending) - MAX_PENDING + 1)]:
            own.pop(key)
        super().set_state_data(own, state, data)

    def clear_state_data(self, _flask_session, state):
        super().clear_state_data(session(), state)


class _DemoOAuth(OAuth):
    framework_integration_cls = _DemoIntegration


def client(creds: Credentials):
    """Authlib's client for these credentials (one per process, metadata cached in it)."""
    cache = current_app.extensions.setdefault("idp_demo_clients", {})
    key = (creds.issuer, creds.client_id, creds.client_secret)
    found = cache.get(key)
    if found is None:
        oauth = _DemoOAuth()
        oauth.app = current_app._get_current_object()  # no init_app: nothing global to register
        found = oauth.register(
            NAME,
            client_id=creds.client_id,
            client_secret=creds.client_secret,
            server_metadata_url=f"{creds.issuer}/.well-known/openid-configuration",
            client_kwargs={"scope": SCOPE, "code_challenge_method": "S256", "default_timeout": 10},
        )
        cache.clear()  # credentials changed: forget the old client
        cache[key] = found
    return found
