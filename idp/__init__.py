"""idp — the OpenID Connect identity provider of the compte ameli.

``create_app`` is the only entry point: ``wsgi.py`` calls it for the server (``idp serve``), the
``idp`` command for the CLI, the tests with their own settings.
"""

from __future__ import annotations

from flask import Flask

from . import config, cookies

def _engine_options(settings: dict) -> dict:
    """SQLite waits ``IDP_DATABASE_BUSY_TIMEOUT`` for another connection's lock.

    No ``pool_pre_ping``: a connection is checked only after it sat idle in the pool
    (:func:`idp.extensions._ping_if_idle`), not before every request.
    ``hide_parameters``: an error's text (in a traceback, in a log line) quotes the
    statement but never its parameters, which may be a NIR or a secret's hash.
    """
    options: dict = {"hide_parameters": True}
    if settings["IDP_DATABASE_URL"].startswith("sqlite"):
        options["connect_args"] = {"timeout": settings["IDP_DATABASE_BUSY_TIMEOUT"]}
    return options


def create_app(overrides: dict | None = None, *, migrations: bool = True) -> Flask:
    """The app; ``migrations=False`` leaves out Flask-Migrate (the served app, see ``wsgi.py``)."""
    app = Flask(
        __name__,  # templates/ and static/ inside the package: a built wheel carries them
        instance_path=str(config.INSTANCE_DIR),
    )
    settings = config.load(overrides)
    app.config.update(settings)
    app.config.update(
        SECRET_KEY=settings["IDP_SECRET_KEY"],
        SQLALCHEMY_DATABASE_URI=settings["IDP_DATABASE_URL"],
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings),
        TESTING=settings["IDP_TESTING"],
        MAX_CONTENT_LENGTH=64 * 1024,
        MAX_FORM_MEMORY_SIZE=64 * 1024,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the Flask session
        # Over https Flask-WTF would also demand a same-host Referer on every POST, which browsers never send
        # here (Referrer-Policy: no-referrer): every form would fail. What that check guards against, a
        # CSRF cookie planted over plain http or from a sibling domain, the __Host- prefix already refuses.
        WTF_CSRF_SSL_STRICT=False,
        SESSION_COOKIE_NAME=cookies.name_for("idp_csrf", settings["IDP_ISSUER"]),  # __Host-idp_csrf over https
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cookies.is_secure(settings["IDP_ISSUER"]),
        JSON_SORT_KEYS=False,
    )

    from .csrf_session import CsrfSessionInterface
    from .extensions import csrf, db, init_migrations

    app.session_interface = CsrfSessionInterface()

    db.init_app(app)
    if migrations:
        init_migrations(app)
    csrf.init_app(app)

    from . import errors, oidc, security_headers, sessions, timefmt
    from .login import bp as login_bp
    from .login import flow as login_flow
    from .login.email_validation import bp as email_validation_bp
    from .mfa import devices

    oidc.init_app(app)
    csrf.exempt(oidc.bp)
    app.register_blueprint(login_bp)
    app.register_blueprint(email_validation_bp)
    from . import recovery

    recovery.init_app(app)  # forgotten password: its blueprint and its per-IP limits (Flask-Limiter)
    from .account import bp as account_bp

    app.register_blueprint(account_bp)  # « Mon compte – Sécurité », /mon-compte/securite

    from . import public

    public.init_app(app)  # /, accessibility, legal notice, personal data, cookies (the footer's links)
    errors.init_app(app)
    from .ops import health

    health.init_app(app)  # /healthz, /readyz
    if app.config["IDP_DEMO"]:  # development only: demo relying party and mailbox under /demo
        from .demo import bp as demo_bp

        app.register_blueprint(demo_bp)
    timefmt.init_app(app)
    app.after_request(sessions.apply_cookie)
    app.after_request(login_flow.apply_cookie)
    app.after_request(devices.apply_cookie)
    app.after_request(security_headers.apply)

    @app.template_global()
    def endpoint_url(endpoint: str, **values) -> str | None:
        """The URL of an endpoint, or None when that part of the product is not installed."""
        from flask import url_for

        return url_for(endpoint, **values) if endpoint in app.view_functions else None

    from .oidc.endpoints.public_document import Shortcut

    app.wsgi_app = Shortcut(app, app.wsgi_app)  # discovery and JWKS, once made, answered before Flask
    if settings["IDP_PROXY_COUNT"]:  # outside the Shortcut: the request log names the client's address
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings["IDP_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    from . import ops

    ops.init_app(app)  # JSON logs, /metrics, and the request recorder as the outermost layer

    from .cli import register as register_cli

    register_cli(app)
    return app
