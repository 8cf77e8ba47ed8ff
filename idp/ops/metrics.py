"""Prometheus metrics, and ``GET /metrics`` in Prometheus's text format (prometheus_client).

Every metric is defined here or in another module of the provider with
prometheus_client's default registry (the domain counters of :mod:`idp.audit`);
``/metrics`` shows them all without a list to keep.

Several worker processes (``idp serve``): each counts in its own memory-mapped files
in ``PROMETHEUS_MULTIPROC_DIR``, which ``idp serve`` sets to a fresh directory
before the workers start (prometheus_client's multiprocess mode); ``/metrics``,
whichever worker answers, adds up every worker's files. A worker that dies keeps its
files: its counts stay in the sums, so counters never go back (only *live* gauges
would need ``mark_process_dead``, and there are none). Without that variable
(``idp run``, the tests in one process) the default registry is read directly.

Protection: ``IDP_METRICS_TOKEN`` unset, the endpoint does not exist (404, like any
unknown path: nothing tells a scanner it could be turned on). Set, a request
without ``Authorization: Bearer <token>``, or with another token, gets 401 with
``WWW-Authenticate: Bearer`` (RFC 6750 §3): what Prometheus's operator needs to see
that the credentials are wrong rather than the address; the token is compared in
constant time. Labels never carry a value from a person: the route is the URL rule,
the grant type one of the supported ones, the status a number.
"""

from __future__ import annotations

import hmac
import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

#: Requests answered, by route (the URL rule, ``unmatched`` for a path that is none) and status.
REQUESTS = Counter("idp_http_requests_total", "HTTP requests answered, by route (URL rule) and status.",
                   ["route", "status"])
#: Time from the request reaching the application to its answer being ready, by route.
LATENCY = Histogram("idp_http_request_duration_seconds", "Time to answer a request, by route (URL rule), seconds.",
                    ["route"], buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
DATABASE_ERRORS = Counter("idp_database_errors_total",
                          "Requests answered 503 because the database was unavailable (idp.errors).")
MAIL_FAILURES = Counter("idp_mail_send_failures_total", "Mails that could not be handed to the mail server.",
                        ["transport"])
TOKENS_ISSUED = Counter("idp_tokens_issued_total", "Token responses of the token endpoint, by grant type.",
                        ["grant_type"])
BACKCHANNEL_FAILURES = Counter("idp_backchannel_logout_failures_total",
                               "Failed delivery attempts of a logout token, by what follows (retry or given_up).",
                               ["outcome"])

#: The grant types a label may name; anything else (refused by the server anyway) is ``other``.
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
#: The route label of a request that matched no URL rule: never its path.
UNMATCHED = "unmatched"


#: The labelled children of the request metrics, by (route, status): a few dozen at most (the URL rules
#: times the statuses they answer). ``labels()`` validates and locks on every call; a dict lookup does not.
_REQUEST_CHILDREN: dict[tuple[str, int], tuple] = {}


def observe_request(route: str | None, status: int, seconds: float) -> None:
    key = (route or UNMATCHED, status)
    children = _REQUEST_CHILDREN.get(key)
    if children is None:
        children = _REQUEST_CHILDREN[key] = (REQUESTS.labels(key[0], str(status)), LATENCY.labels(key[0]))
    children[0].inc()
    children[1].observe(seconds)


def mail_failed(transport: str) -> None:
    MAIL_FAILURES.labels(transport if transport in ("smtp", "smtps", "console") else "other").inc()


def database_error() -> None:
    DATABASE_ERRORS.inc()


def backchannel_failed(given_up: bool) -> None:
    BACKCHANNEL_FAILURES.labels("given_up" if given_up else "retry").inc()


def exposition() -> bytes:
    """Every metric, of every worker when there are several (multiprocess mode), as text."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def _authorized(expected: str, header: str | None) -> bool:
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def init_app(app) -> None:
    from flask import Response, abort, request

    @app.after_request
    def count_tokens(response):
        """A token issued: the token endpoint answered 200 (its view knows nothing of this)."""
        if request.endpoint == "oidc.token" and response.status_code == 200:
            grant_type = request.form.get("grant_type")
            TOKENS_ISSUED.labels(grant_type if grant_type in GRANT_TYPES else "other").inc()
        return response

    def metrics():
        token = app.config.get("IDP_METRICS_TOKEN")
        if not token:
            abort(404)
        if not _authorized(token, request.headers.get("Authorization")):
            return Response("Unauthorized\n", 401, {"WWW-Authenticate": 'Bearer realm="metrics"',
                                                    "Cache-Control": "no-store"}, mimetype="text/plain")
        return Response(exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})

    app.add_url_rule("/metrics", "ops_metrics", metrics, methods=["GET"])
