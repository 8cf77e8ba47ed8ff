"""The outermost WSGI layer: a request id, one log line and the request metrics for every request.

At the WSGI level rather than in Flask's hooks, so that nothing escapes it: the
public documents answered before Flask (:class:`idp.oidc.endpoints.public_document.Shortcut`),
a request a hook refused, an error page. It decides the request id
(:mod:`.request_id`) and binds it for the log lines of the request, adds
``X-Request-ID`` to the response, and once the application has answered logs the
request line (``event: "request"``) and counts it (:mod:`.metrics`).

The route is the URL rule Flask matched (``/captcha/<handle>/image.png``), put in the
WSGI environ under :data:`ROUTE_KEY` as Flask matches it (:class:`RoutedRequest`; the
Shortcut puts the document's path, which is its rule); a path that matched no rule is
``unmatched``.
Never the path itself or the query string: authorization requests carry
``login_hint`` (a NIR), logout requests ``id_token_hint``. The client address is
``REMOTE_ADDR`` once ``ProxyFix`` has replaced it from ``X-Forwarded-For``
(``IDP_PROXY_COUNT``). The duration is the time until the application returned its
answer (the body of every page is made by then; a static file is streamed after).
"""

from __future__ import annotations

import logging
import time

import structlog
from flask import Request

from . import logs, metrics, request_id

#: The WSGI environ key of the request's route (URL rule), set by whoever answers it.
ROUTE_KEY = "idp.route"
#: The WSGI environ key of the request id.
REQUEST_ID_KEY = "idp.request_id"
#: Probes a load balancer sends every second: counted, but no request line unless they fail.
PROBES = frozenset(("/healthz", "/readyz"))


class RoutedRequest(Request):
    """Flask's request, which also notes the URL rule it matched in the WSGI environ, for the recorder.

    Flask sets ``url_rule`` once it has matched the URL, before any ``before_request``
    hook (so a request a hook answers, a CORS preflight or a 429, has its route too).
    Noting it in the setter costs an attribute write; a ``request_started`` receiver cost
    a signal dispatch per request (3 % of a served UserInfo request, measured with py-spy).
    """

    _url_rule = None

    @property
    def url_rule(self):
        return self._url_rule

    @url_rule.setter
    def url_rule(self, rule) -> None:
        self._url_rule = rule
        if rule is not None:
            self.environ[ROUTE_KEY] = rule.rule


class Recorder:
    def __init__(self, app, wsgi_app) -> None:
        self.wsgi_app = wsgi_app
        self.trust_header = app.config["IDP_PROXY_COUNT"] > 0
        self.log = logs.request_logger()
        # Asked of the standard logger (cached by logging) before structlog builds a line that its
        # level filter would drop anyway: in text mode (development) there is no request line.
        self.log_enabled = logging.getLogger(logs.REQUEST_LOGGER).isEnabledFor
        app.request_class = RoutedRequest

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
            if (route not in PROBES or status >= 400) and self.log_enabled(logging.INFO):
                self.log.info("request", method=environ.get("REQUEST_METHOD"), route=route or metrics.UNMATCHED,
                              status=status, duration_ms=round(seconds * 1000, 3), client=environ.get("REMOTE_ADDR"))
            structlog.contextvars.reset_contextvars(**bound)
