"""The outermost WSGI layer: a request id, one log line and the request metrics for every request.

At the WSGI level rather than in Flask's hooks, so that nothing escapes it: the
public documents answered before Flask (:class:`idp.oidc.endpoints.public_document.Shortcut`),
a request a hook refused, an error page. It decides the request id
(:mod:`.request_id`) and binds it for the log lines of the request, adds
``X-Request-ID`` to the response, and once the application has answered logs the
request line (``event: "request"``) and counts it (:mod:`.metrics`).

The route is the URL rule Flask matched (``/captcha/<handle>/image.png``), put in the
WSGI environ under :data:`ROUTE_KEY` when the request starts (the Shortcut puts the
document's path, which is its rule); a path that matched no rule is ``unmatched``.
Never the path itself or the query string: authorization requests carry
``login_hint`` (a NIR), logout requests ``id_token_hint``. The client address is
``REMOTE_ADDR`` once ``ProxyFix`` has replaced it from ``X-Forwarded-For``
(``IDP_PROXY_COUNT``). The duration is the time until the application returned its
answer (the body of every page is made by then; a static file is streamed after).
"""

from __future__ import annotations

import time

import structlog
from flask import request, request_started

from . import logs, metrics, request_id

#: The WSGI environ key of the request's route (URL rule), set by whoever answers it.
ROUTE_KEY = "idp.route"
#: The WSGI environ key of the request id.
REQUEST_ID_KEY = "idp.request_id"
#: Probes a load balancer sends every second: counted, but no request line unless they fail.
PROBES = frozenset(("/healthz", "/readyz"))


def _note_route(sender, **extra) -> None:
    """``request_started``: Flask has matched the URL; keep its rule for the recorder."""
    if request.url_rule is not None:
        request.environ[ROUTE_KEY] = request.url_rule.rule


class Recorder:
    def __init__(self, app, wsgi_app) -> None:
        self.wsgi_app = wsgi_app
        self.trust_header = app.config["IDP_PROXY_COUNT"] > 0
        self.log = logs.request_logger()
        request_started.connect(_note_route, app)

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        rid = environ[REQUEST_ID_KEY] = request_id.for_request(environ, self.trust_header)
        answered = {}

        def recording_start_response(status, headers, exc_info=None):
            answered["status"] = status
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append((request_id.HEADER, rid))
            return start_response(status, headers, exc_info)

        bound = structlog.contextvars.bind_contextvars(request_id=rid)
        try:
            return self.wsgi_app(environ, recording_start_response)
        finally:
            seconds = time.perf_counter() - started
            status = int(answered.get("status", "500").split(" ", 1)[0])
            route = environ.get(ROUTE_KEY)
            metrics.observe_request(route, status, seconds)
            if route not in PROBES or status >= 400:
                self.log.info("request", method=environ.get("REQUEST_METHOD"), route=route or metrics.UNMATCHED,
                              status=status, duration_ms=round(seconds * 1000, 3), client=environ.get("REMOTE_ADDR"))
            structlog.contextvars.reset_contextvars(**bound)
