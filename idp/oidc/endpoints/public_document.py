"""Serving a public JSON document (discovery, JWKS) from bytes made once, with its ``ETag``.

Relying parties fetch these often and every one of them gets the same bytes: they
are serialised once (per process, or per key-cache period for the JWKS), and a
client that sends back the ``ETag`` in ``If-None-Match`` gets a 304 without a body.
Any origin may read them (CORS ``*``): they hold nothing private.
"""

from __future__ import annotations

from flask import Response, request

MAX_AGE = 300


def serve(body: bytes, etag: str) -> Response:
    response = Response(body, mimetype="application/json")
    response.set_etag(etag)
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.cache_control.public = True
    response.cache_control.max_age = MAX_AGE
    return response.make_conditional(request)
