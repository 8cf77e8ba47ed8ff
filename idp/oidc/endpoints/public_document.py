"""Serving a public JSON document (discovery, JWKS) from bytes made once, with its ``ETag``.

Relying parties fetch these often and every one of them gets the same bytes: they
are serialised once (per process, or per key-cache period for the JWKS), and a
client that sends back the ``ETag`` in ``If-None-Match`` gets a 304 without a body.
Any origin may read them (CORS ``*``): they hold nothing private.

Once made, the same bytes are also answered *before* Flask by :class:`Shortcut`,
a WSGI middleware: a GET of a document that is already made and still current
needs no request context, session, hooks or database, and Flask's own dispatch
costs more than the rest of such a request (0.35 ms of CPU per request through
Flask against 0.11 ms for the bare server, on the bench core). Whatever the
shortcut does not hold (the first request, a JWKS whose key-cache period has
ended, another method) goes to Flask, which makes the document again; the
answer is the same either way (tests/test_public_documents.py compares them).
"""

from __future__ import annotations

import time
from typing import Callable

from flask import Flask, Response, request
from werkzeug.http import parse_etags

from ... import security_headers
from ...ops.recorder import ROUTE_KEY

MAX_AGE = 300


_HEADERS = {"Access-Control-Allow-Origin": "*", "Cache-Control": f"public, max-age={MAX_AGE}"}


def serve(body: bytes, etag: str) -> Response:
    """200 with the bytes, or 304 when the client already holds them (``If-None-Match``)."""
    headers = {**_HEADERS, "ETag": f'"{etag}"'}
    if request.if_none_match.contains_weak(etag):
        return Response(status=304, headers=headers)
    return Response(body, mimetype="application/json", headers=headers)


# --- before Flask ---------------------------------------------------------------------

def _discovery(app: Flask) -> tuple[bytes, str] | None:
    return app.extensions.get("idp_discovery")  # made once per process (discovery.document)


def _jwks(app: Flask) -> tuple[bytes, str] | None:
    view = app.extensions.get("idp_keys")  # keys._view: read again once IDP_KEY_CACHE_SECONDS have passed
    if view is None or view["until"] <= time.monotonic():
        return None
    return view["body"], view["etag"]


#: Path → what the process already holds for it (None: let Flask make it).
DOCUMENTS: dict[str, Callable[[Flask], tuple[bytes, str] | None]] = {
    "/.well-known/openid-configuration": _discovery,
    "/.well-known/oauth-authorization-server": _discovery,  # RFC 8414: the same document
    "/jwks.json": _jwks,
}


class Shortcut:
    """WSGI middleware answering GET/HEAD of a public document the process already holds."""

    def __init__(self, app: Flask, wsgi_app) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        fixed = [(name, value) for name, value in _HEADERS.items()]
        self.headers = [*fixed, *security_headers.for_cacheable()]

    def __call__(self, environ, start_response):
        held = DOCUMENTS.get(environ.get("PATH_INFO", ""))
        method = environ.get("REQUEST_METHOD")
        made = held(self.app) if held is not None and method in ("GET", "HEAD") else None
        if made is None:
            return self.wsgi_app(environ, start_response)
        body, etag = made
        environ[ROUTE_KEY] = environ["PATH_INFO"]  # the document's path is its URL rule (idp.ops.recorder)
        headers = [*self.headers, ("ETag", f'"{etag}"')]
        if parse_etags(environ.get("HTTP_IF_NONE_MATCH")).contains_weak(etag):
            start_response("304 NOT MODIFIED", headers)
            return []
        start_response("200 OK", [("Content-Type", "application/json"), *headers, ("Content-Length", str(len(body)))])
        return [] if method == "HEAD" else [body]
