"""Headers on every response: no framing, no third-party resources, no caching of secrets.

Forms may post to the provider only (CSP ``form-action 'self'``). Chromium also
applies ``form-action`` to the redirects that answer a form, so a page whose form
may be answered by a redirect to a relying party (a login step, « Annuler », the
logout confirmation) names that one address's origin: :func:`allow_form_redirect`,
called where the registered redirect URI is already at hand (the login flow when
it is loaded, the validated logout request), without another query. Images come
from the provider only, except the logo a partner site registered (``logo_uri``),
allowed by :func:`allow_image` on the login pages that show it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import g, request

_HOST = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]")


def origin_source(uri: str | None) -> str | None:
    """The CSP source expression of the origin of an http(s) ``uri``; None for anything else.

    Registered URIs are absolute http(s) URLs without credentials; whatever does not
    parse as one is left out rather than written into the header.
    """
    if not uri:
        return None
    try:
        parts = urlsplit(uri)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    if not _HOST.fullmatch(host):
        return None
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def allow_form_redirect(uri: str | None) -> None:
    """This response's forms may be answered by a redirect to ``uri``: allow its origin in ``form-action``."""
    source = origin_source(uri)
    if source is not None:
        g.idp_form_action_sources = {*g.get("idp_form_action_sources", ()), source}


def allow_image(uri: str | None) -> None:
    """This response shows the image at ``uri`` (a registered partner logo): allow its origin in ``img-src``."""
    source = origin_source(uri)
    if source is not None:
        g.idp_img_sources = {*g.get("idp_img_sources", ()), source}


_CSP = (
    "default-src 'self'; img-src 'self' data:{img}; media-src 'self' blob:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; {form_action}; base-uri 'none'"
)
_DEFAULT_CSP = _CSP.format(img="", form_action="form-action 'self'")
_ALWAYS = (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"))
#: Endpoints whose answers may be cached: static files, and the public documents (their own Cache-Control).
_CACHEABLE = frozenset(("static", "oidc.jwks", "oidc.openid_configuration", "oidc.oauth_authorization_server"))


def for_cacheable() -> list[tuple[str, str]]:
    """The headers :func:`apply` gives a cacheable answer (a public document) that set none itself."""
    return [("Content-Security-Policy", _DEFAULT_CSP), *_ALWAYS]


def apply(response):
    """``after_request``: the headers, with the form redirects allowed during this request (then forgotten).

    Runs on every response, so it is kept to a few dictionary operations: the usual
    policy is one string made at import, and a header a view set itself is kept.
    """
    sources = g.pop("idp_form_action_sources", None)
    images = g.pop("idp_img_sources", None)
    if sources or images:
        csp = _CSP.format(img="".join(f" {s}" for s in sorted(images or ())),
                          form_action=" ".join(["form-action 'self'", *sorted(sources or ())]))
    else:
        csp = _DEFAULT_CSP
    h = response.headers
    present = {name.lower() for name, _ in h.items()}
    if "content-security-policy" not in present:
        h.add("Content-Security-Policy", csp)
    for name, value in _ALWAYS:
        if name.lower() not in present:
            h.add(name, value)
    if request.endpoint not in _CACHEABLE:
        h["Cache-Control"] = "no-store"
        if "pragma" not in present:
            h.add("Pragma", "no-cache")
    return response
