"""The names and attributes of the cookies the provider sets, derived in one place.

Over https (an ``https://`` issuer) every cookie is ``Secure`` and its name carries
the ``__Host-`` prefix (RFC 6265bis §4.1.3.2): a browser then accepts it only from a
secure origin, with ``Path=/`` and no ``Domain``, so that neither a plain-http page on
the same host nor a sibling sub-domain can plant or overwrite the provider's login
session, login flow, trusted-device or CSRF cookie (cookie tossing). Over plain http
(development, tests) the names are the bare ones: a browser refuses ``__Host-``
cookies that are not ``Secure``.
"""

from __future__ import annotations

from flask import current_app

#: The prefix a browser holds to Secure, Path=/, no Domain.
HOST_PREFIX = "__Host-"


def is_secure(issuer: str) -> bool:
    return issuer.startswith("https://")


def name_for(base: str, issuer: str) -> str:
    """The cookie name ``base`` takes for the provider at ``issuer``."""
    return HOST_PREFIX + base if is_secure(issuer) else base


def name(base: str) -> str:
    """The cookie name ``base`` takes in this app (see :func:`name_for`)."""
    return name_for(base, current_app.config["IDP_ISSUER"])


def options() -> dict:
    """Attributes of every cookie: HttpOnly, SameSite=Lax, Path=/, no Domain, Secure over https."""
    return {
        "httponly": True,
        "samesite": "Lax",
        "secure": is_secure(current_app.config["IDP_ISSUER"]),
        "path": "/",
    }
