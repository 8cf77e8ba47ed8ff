"""Per-IP limits of the forgotten-password endpoints, with Flask-Limiter.

They come on top of the per-account quota (case 2, kept in the database by
:mod:`idp.limits`): they slow down whoever asks for CAPTCHA images or sounds,
or submits the forms, from one address. Each app gets its own
:class:`~flask_limiter.Limiter` (the tests create many apps), with its storage
from ``RATE_LIMIT_STORAGE_URI`` (``memory://`` for one process; with several
workers or hosts, a shared ``redis://``). The limits are settings, read at each
request. Behind a reverse proxy, the client address must be restored first
(werkzeug's ProxyFix), or every person shares the proxy's limit.

A request over the limit gets the French 429 page of :mod:`idp.errors`.

When the storage fails (Redis down or frozen), the limits are skipped and the
pages keep answering: the per-NIR quota in the database and the CAPTCHA still
apply. A Redis that does not answer is given up after ``REDIS_TIMEOUT`` seconds,
and each skipped check is logged as one WARNING line of the app's log, without
the traceback Flask-Limiter would attach (see :class:`OneLineStorageErrors`).
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, has_request_context, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from ..errors import describe, route

#: Seconds to connect to Redis, and to wait for each of its answers, before the limits are skipped.
REDIS_TIMEOUT = 1.0

#: (endpoint, setting holding its limit, HTTP methods counted; None: all)
LIMITS = (
    ("recovery.start", "IDP_RATE_LIMIT_CAPTCHA", ["GET"]),  # every page shown makes a new series
    ("recovery.start", "IDP_RATE_LIMIT_RECOVERY", ["POST"]),
    ("recovery.captcha_image", "IDP_RATE_LIMIT_CAPTCHA", None),
    ("recovery.captcha_audio", "IDP_RATE_LIMIT_CAPTCHA", None),
    ("recovery.new_password", "IDP_RATE_LIMIT_RECOVERY", ["POST"]),
    ("recovery.check_password", "IDP_RATE_LIMIT_PASSWORD_CHECK", None),
)


def _setting(name: str):
    return lambda: current_app.config[name]


class OneLineStorageErrors(logging.Handler):
    """Flask-Limiter's log, as one line of the app's log per event, never a traceback.

    With ``swallow_errors`` Flask-Limiter logs every request it could not count with
    ``logger.exception``: a full traceback per request during a Redis outage, on a
    logger that nothing shows by default. Its records are taken off that logger
    (``propagate`` off) and restated here: the error's class and first line, and
    the request that went through without its per-IP limit.
    """

    def emit(self, record: logging.LogRecord) -> None:
        where = f"{request.method} {route()}" if has_request_context() else "-"
        if record.exc_info and record.exc_info[1] is not None:
            message = "Rate limit storage unavailable (%s): per-IP limit not applied to %s"
            args = (describe(record.exc_info[1]), where)
        else:
            message, args = "Rate limiting: %s (%s)", (record.getMessage(), where)
        logger = current_app.logger if has_request_context() else logging.getLogger(__name__)
        logger.warning(message, *args)  # a skipped limit is worth a warning, not an error with its traceback


def _route_limiter_log() -> None:
    """Once per process (the tests create many apps): Flask-Limiter's records go through the handler above."""
    limiter_log = logging.getLogger("flask-limiter")
    if not any(isinstance(h, OneLineStorageErrors) for h in limiter_log.handlers):
        limiter_log.addHandler(OneLineStorageErrors())
        limiter_log.propagate = False


def _scope_hooks_to_blueprint(app: Flask, limiter: Limiter, blueprint: str) -> None:
    """Run Flask-Limiter's request hooks on the requests of ``blueprint`` only.

    Flask-Limiter registers its before, after and teardown hooks on every request of
    the app, and resolves (no) limits for each: on the protocol endpoints, that was
    a third of a discovery request's time. Every limit here decorates a view of the
    recovery blueprint, so its hooks are moved from the app-wide lists to that
    blueprint's (Flask's registries of hooks per blueprint, ``None`` being the app).
    """
    assert all(endpoint.startswith(blueprint + ".") for endpoint, _, _ in LIMITS)
    for registry in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        ours = [hook for hook in registry[None] if getattr(hook, "__self__", None) is limiter
                or getattr(hook, "args", (None,))[0] is limiter]
        for hook in ours:
            registry[None].remove(hook)
            registry[blueprint].append(hook)


def init_app(app: Flask) -> Limiter:
    _route_limiter_log()
    uri = app.config["IDP_RATE_LIMIT_STORAGE_URI"]
    limiter = Limiter(
        key_func=get_remote_address,
        app=app,
        storage_uri=uri,
        storage_options=(
            {"socket_connect_timeout": REDIS_TIMEOUT, "socket_timeout": REDIS_TIMEOUT} if uri.startswith("redis") else {}
        ),
        headers_enabled=True,
        key_prefix="idp",
        # A storage outage (redis down) lets requests through, logged: the quotas kept in the
        # database (case 2) and the CAPTCHA still apply, and the pages stay up.
        swallow_errors=True,
    )
    _scope_hooks_to_blueprint(app, limiter, "recovery")
    for endpoint, setting, methods in LIMITS:
        app.view_functions[endpoint] = limiter.limit(_setting(setting), methods=methods, per_method=True)(app.view_functions[endpoint])
    app.extensions["idp_limiter"] = limiter
    return limiter
