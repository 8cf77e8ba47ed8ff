"""Headers on every response: no framing, no third-party resources, no caching of secrets."""

from flask import request


def apply(response):
    h = response.headers
    h.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; style-src 'self'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self' *; base-uri 'none'",
    )
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "no-referrer")
    if request.endpoint not in ("static", "oidc.jwks", "oidc.openid_configuration"):
        h["Cache-Control"] = "no-store"
        h.setdefault("Pragma", "no-cache")
    return response
