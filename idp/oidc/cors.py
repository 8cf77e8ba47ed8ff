"""CORS for browser clients (Fetch standard §3.2): which web pages may call the back channel.

A single-page application (a public client, as RFC 9700 §2.1.1 and "OAuth 2.0 for
Browser-Based Apps" recommend) calls ``/token``, ``/userinfo`` and ``/revoke`` from
its own origin with ``fetch``; the browser lets it read the answers only when the
provider names that origin in ``Access-Control-Allow-Origin``. The origins allowed
are exactly those (``scheme://host[:port]``) of the registered redirect URIs of
public clients, and of confidential clients an administrator opted in
(``idp clients add|update --cors``): a partner whose browser code runs elsewhere
registers nothing here. Any other origin gets no CORS header at all, so the
browser keeps the answer from the page.

* ``/introspect`` is server-to-server (RFC 7662 §4: a resource server's call):
  never CORS. The HTML pages (authorize, login, logout) are navigations: never CORS.
* Discovery and the JWKS are public documents, the same bytes for everyone, read
  without credentials: ``Access-Control-Allow-Origin: *``
  (:mod:`.endpoints.public_document`), which keeps them cacheable by any shared
  cache; naming the origin would need ``Vary: Origin`` and one copy per origin.
* No ``Access-Control-Allow-Credentials``: these endpoints take their credentials
  in the request (code, verifier, token), never from a cookie.
* CORS is not an authorization: it only decides which pages may *read* answers.
  The token, the PKCE verifier and the client authentication decide what is given.

The set of origins is read once per ``IDP_CLIENT_CACHE_SECONDS`` per process, as
the back-channel client cache (:func:`idp.oidc.server.authenticating_client`)
does: a client added, changed or removed by the CLI on any host is seen by every
worker within that delay, and a request without an ``Origin`` header (every
server-side relying party) never looks at it. The read is its own short
connection, outside the request's protocol connection and its transaction mode.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import Response, current_app, g, request
from sqlalchemy import or_, select

from ..extensions import db
from ..models import Client

#: The back-channel endpoints a browser client calls, and the methods it may use there.
ENDPOINT_METHODS = {
    "oidc.token": "POST",
    "oidc.userinfo": "GET, POST",
    "oidc.revoke": "POST",
}
#: Public documents: any origin may read them (see the module docstring).
PUBLIC_DOCUMENTS = frozenset(("oidc.openid_configuration", "oidc.oauth_authorization_server", "oidc.jwks"))
#: What a browser client sends beyond the CORS-safelisted headers (a bearer token, a JSON or form body).
ALLOW_HEADERS = "Authorization, Content-Type"
#: RFC 6750 §3 (userinfo) and RFC 6749 §5.2 (token, 401 ``invalid_client``): the challenge a client must read.
EXPOSE_HEADERS = "WWW-Authenticate"

_DEFAULT_PORTS = {"http": 80, "https": 443}

_clients = Client.__table__
_BROWSER_CLIENT_URIS = select(_clients.c.redirect_uris).where(
    or_(_clients.c.client_secret_hash.is_(None), _clients.c.cors.is_(True))
)


def origin_of(uri: str) -> str | None:
    """The origin of an http(s) URI as a browser serialises it in ``Origin`` (lower case, no default port)."""
    try:
        parts = urlsplit(uri)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    suffix = "" if port is None or port == _DEFAULT_PORTS[scheme] else f":{port}"
    return f"{scheme}://{host}{suffix}"


def _read_origins() -> frozenset[str]:
    with db.engine.connect() as conn:
        rows = conn.execute(_BROWSER_CLIENT_URIS).scalars().all()
    return frozenset(o for uris in rows for o in map(origin_of, uris or []) if o is not None)


def allowed_origins() -> frozenset[str]:
    """The origins of browser clients, from a per-process cache kept ``IDP_CLIENT_CACHE_SECONDS``."""
    lifetime = current_app.config["IDP_CLIENT_CACHE_SECONDS"]
    if lifetime <= 0:
        return _read_origins()
    now = time.monotonic()
    cached = current_app.extensions.get("idp_cors_origins")
    if cached is not None and cached[0] > now:
        return cached[1]
    origins = _read_origins()
    current_app.extensions["idp_cors_origins"] = (now + lifetime, origins)
    return origins


def _allowed(origin: str | None) -> bool:
    # A browser sends the literal "null" for opaque origins (sandboxed frames, file:): never allowed.
    return bool(origin) and origin != "null" and len(origin) <= 300 and origin in allowed_origins()


def preflight():
    """``before_request``: find whether the ``Origin`` is allowed; answer an ``OPTIONS`` preflight (204).

    Decided before the view, so that a database failure while reading the origins
    is answered as any other (:mod:`idp.errors`), never in the middle of
    :func:`apply`. For an origin that is not allowed a preflight goes on to Flask's
    ordinary ``OPTIONS`` answer, without any CORS header: the browser then sends nothing.
    """
    endpoint = request.endpoint
    if endpoint in PUBLIC_DOCUMENTS and request.method == "OPTIONS":
        return Response(status=204, headers={
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": "GET",
            "Access-Control-Allow-Headers": "*",
            "Access-Control-Max-Age": str(current_app.config["IDP_CORS_MAX_AGE"]),
        })
    methods = ENDPOINT_METHODS.get(endpoint)
    if methods is None:
        return None
    origin = request.headers.get("Origin")
    if origin is None or not _allowed(origin):
        return None
    g.idp_cors_origin = origin
    if request.method != "OPTIONS":
        return None
    return Response(status=204, headers={
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Max-Age": str(current_app.config["IDP_CORS_MAX_AGE"]),
    })


def apply(response):
    """``after_request``: name the allowed origin on the answers of the CORS endpoints, errors included."""
    if request.endpoint not in ENDPOINT_METHODS:
        return response
    # The answer depends on it: no shared cache may mix them up. Written directly: ``response.vary``
    # parses the header into a set and writes it back, a tenth of this hook's cost on every request.
    vary = response.headers.get("Vary")
    response.headers["Vary"] = f"{vary}, Origin" if vary else "Origin"
    origin = g.pop("idp_cors_origin", None)
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        if request.method != "OPTIONS":
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
    return response


def init_app(app) -> None:
    app.before_request(preflight)
    app.after_request(apply)
