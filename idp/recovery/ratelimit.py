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
"""

from __future__ import annotations

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

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


def init_app(app: Flask) -> Limiter:
    limiter = Limiter(
        key_func=get_remote_address,
        app=app,
        storage_uri=app.config["IDP_RATE_LIMIT_STORAGE_URI"],
        headers_enabled=True,
        key_prefix="idp",
        # A storage outage (redis down) lets requests through, logged: the quotas kept in the
        # database (case 2) and the CAPTCHA still apply, and the pages stay up.
        swallow_errors=True,
    )
    for endpoint, setting, methods in LIMITS:
        app.view_functions[endpoint] = limiter.limit(_setting(setting), methods=methods, per_method=True)(app.view_functions[endpoint])
    app.extensions["idp_limiter"] = limiter
    return limiter
