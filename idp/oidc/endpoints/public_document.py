"""Serving a public JSON document (discovery, JWKS) from bytes made once, with its ``ETag``.

Relying parties fetch these often and every one of them gets the same bytes: they
are serialised once (per process, or per key-cache period for the JWKS), and a
client that sends back the ``ETag`` in ``If-None-Match`` gets a 304 without a body.
Any origin may read them (CORS ``*``): they hold nothing private.
"""

from __future__ import annotations

from flask import Response, request

MAX_AGE = 300


_HEADERS = {"Access-Control-Allow-Origin": "*", "Cache-Control": f"public, max-age={MAX_AGE}"}


def serve(body: bytes, etag: str) -> Response:
    """200 with the bytes, or 304 when the client already holds them (``If-None-Match``)."""
    headers = {**_HEADERS, "ETag": f'"{etag}"'}
    if request.if_none_match.contains_weak(etag):
        return Response(status=304, headers=headers)
    return Response(body, mimetype="application/json", headers=headers)
