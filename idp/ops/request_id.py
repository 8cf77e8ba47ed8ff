"""The request id: one short string that ties a request's log lines together, across hosts.

A reverse proxy (nginx's ``$request_id``) may have given the request one already, in
``X-Request-ID``; it is taken only when the provider trusts proxies
(``IDP_PROXY_COUNT`` > 0): otherwise anyone could choose the id their request is
logged under and make lines of different requests look like one. A value taken is
checked first — at most :data:`MAX_LENGTH` characters of letters, digits and
``-_.:`` —, as a header goes into every log line: no spaces, quotes, newlines or
control characters that would forge or break a line. A refused or absent value is
replaced by a new random id. The id is returned in the response's ``X-Request-ID``.
"""

from __future__ import annotations

import re
import secrets

HEADER = "X-Request-ID"
ENVIRON_HEADER = "HTTP_X_REQUEST_ID"
MAX_LENGTH = 64
VALID = re.compile(r"[A-Za-z0-9._:-]{1,%d}" % MAX_LENGTH)


def new() -> str:
    """A fresh id: 128 random bits, 32 hexadecimal characters (nginx's ``$request_id`` has the same shape)."""
    return secrets.token_hex(16)


def valid(value: str | None) -> bool:
    return value is not None and VALID.fullmatch(value) is not None


def for_request(environ: dict, trust_header: bool) -> str:
    """The id of this request: the proxy's when trusted and well-formed, a new one otherwise."""
    given = environ.get(ENVIRON_HEADER) if trust_header else None
    return given if valid(given) else new()
