"""Error pages in French, and never a 500 for bad input.

HTML pages for people, JSON for the protocol endpoints that relying parties call.

One handler per kind of failure. A database outage (unreachable, locked, out of
resources) is not a bug: :func:`database_unavailable` answers 503 with
``Retry-After``, ``temporarily_unavailable`` in the protocol's JSON or the French
« Service momentanément indisponible » page, logs one WARNING line without a
traceback, and drops the session's transaction so that the next request, on a
fresh connection (the pool is invalidated on a disconnect, and a connection that
waited idle is checked before use: :mod:`idp.extensions`), works as soon as the
database is back.
The authorization endpoint sends the error to the relying party itself when it
had verified the redirect URI (:mod:`idp.oidc.endpoints.authorize`).
"""

from __future__ import annotations

import logging
import sqlite3

from flask import current_app, g, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .extensions import db
from .messages import msg
from .ops import metrics

log = logging.getLogger(__name__)

#: Seconds a client is asked to wait after a 503 (``Retry-After``).
RETRY_AFTER = 60

#: SQLite primary result codes of an unavailable database: busy or locked by another
#: connection past the busy timeout, out of memory, read-only, I/O error, disk full,
#: cannot open, locking protocol. SQLITE_ERROR (a syntax error, a missing table) is a bug.
SQLITE_OUTAGE_CODES = {5, 6, 7, 8, 10, 13, 14, 15}
#: PostgreSQL SQLSTATE classes of an unavailable server: connection exception (08),
#: insufficient resources (53), operator intervention (57: shutdown, statement timeout),
#: system error (58); and lock_not_available (55P03, past ``lock_timeout``).
PG_OUTAGE_CLASSES = {"08", "53", "57", "58"}
PG_OUTAGE_STATES = {"55P03"}
#: What a request decided to send as cookies, backed by the transaction an outage rolled back.
ROLLED_BACK_COOKIES = ("idp_session_cookie", "idp_flow_cookie", "idp_device_cookie")

JSON_ENDPOINTS = ("/token", "/userinfo", "/revoke", "/introspect", "/jwks.json", "/.well-known/")


def _wants_json() -> bool:
    return request.path.startswith(JSON_ENDPOINTS)


def is_database_outage(error: BaseException) -> bool:
    """Whether ``error`` says the database is unavailable, rather than that the code is wrong.

    The signals: the pool gave no connection in time; SQLAlchemy saw the connection
    die (``connection_invalidated``); an ``OperationalError`` that the driver says
    is about availability. SQLite reports syntax errors and missing tables as
    ``OperationalError`` too, so its result code decides; PostgreSQL's SQLSTATE
    class does, and a driver error without SQLSTATE is about the connection itself.
    """
    if isinstance(error, (sa_exc.TimeoutError, sa_exc.DisconnectionError)):
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if not isinstance(error, sa_exc.OperationalError):
        return False
    orig = error.orig
    if isinstance(orig, sqlite3.Error):
        return (getattr(orig, "sqlite_errorcode", 0) & 0xFF) in SQLITE_OUTAGE_CODES
    sqlstate = getattr(orig, "sqlstate", None)
    if not sqlstate:
        return True
    return sqlstate[:2] in PG_OUTAGE_CLASSES or sqlstate in PG_OUTAGE_STATES


def outage_in(error: BaseException | None) -> BaseException | None:
    """The database outage ``error`` is, or was raised while handling; None when there is none."""
    seen = set()
    while error is not None and id(error) not in seen:
        if is_database_outage(error):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def describe(error: BaseException) -> str:
    """``psycopg.OperationalError: connection failed: …`` — the driver's class and first line, short.

    Never SQLAlchemy's own text, which quotes the statement and its parameters.
    """
    cause = getattr(error, "orig", None) or error
    kind = type(cause).__qualname__
    module = type(cause).__module__
    if module not in ("builtins", None):
        kind = f"{module.split('.')[0]}.{kind}"
    lines = str(cause).strip().splitlines()
    text = lines[0] if lines else ""
    return f"{kind}: {text[:200]}"


def route() -> str:
    """The request's route as declared (``/captcha/<handle>/image.png``): what a log may name, never a value."""
    return request.url_rule.rule if request.url_rule is not None else request.path


def recover_from_outage(error: BaseException) -> None:
    """Log the outage in one line and forget what this request had started.

    The transaction is rolled back and the session removed (its connection goes back
    to the pool, invalidated when it died); the cookies the request had decided on
    are not sent, since the rows behind them were not written.
    """
    current_app.logger.warning("Database unavailable (%s): 503 for %s %s", describe(error),
                               request.method, route())
    metrics.database_error()
    try:
        db.session.rollback()
    except sa_exc.SQLAlchemyError:
        pass  # the connection is gone: the pool has invalidated it already
    db.session.remove()
    for name in ROLLED_BACK_COOKIES:
        g.pop(name, None)


def unavailable_response():
    """503, ``Retry-After``: ``temporarily_unavailable`` in JSON, or the French page."""
    if _wants_json():
        response = jsonify(error="temporarily_unavailable",
                           error_description="The service is temporarily unavailable. Retry later.")
    else:
        response = make_response(render_template("errors/unavailable.html", title=msg("unavailable_title"),
                                                 message=msg("unavailable"), retry=msg("unavailable_retry")))
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER)
    response.headers["Cache-Control"] = "no-store"
    return response


def http_error_response(error: HTTPException):
    """The answer to an HTTP error: a French page (JSON for API clients), with the error's headers.

    The app's handler of every HTTPException; a blueprint that handles some of them
    itself (the recovery pages turn a form's 429 into a 303) hands it the others.
    """
    if _wants_json():
        code = "invalid_request" if error.code < 500 else "server_error"
        response = jsonify(error=code, error_description=error.name)
    else:
        response = make_response(render_template("errors/http.html", error=error))
    response.status_code = error.code
    # Keep what the exception says beyond its body: ``Allow`` on a 405 (RFC 9110 §15.5.6),
    # ``Retry-After``, ``WWW-Authenticate``...
    for name, value in error.get_headers():
        if name.lower() not in ("content-type", "content-length"):
            response.headers[name] = value
    return response


def init_app(app) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return render_template("errors/generic.html", title="Formulaire expiré", message=msg("csrf")), 400

    @app.before_request
    def refuse_oversized_body():
        """413 for any declared body over the limit, read or not (``/userinfo`` reads none)."""
        limit = app.config.get("MAX_CONTENT_LENGTH")
        if limit and request.content_length and request.content_length > limit:
            raise RequestEntityTooLarge()

    app.register_error_handler(HTTPException, http_error_response)

    @app.errorhandler(sa_exc.SQLAlchemyError)
    def database_unavailable(error: sa_exc.SQLAlchemyError):
        if not is_database_outage(error):
            return unexpected(error)  # a bug: the 500 and its traceback
        recover_from_outage(error)
        return unavailable_response()

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        outage = outage_in(error)
        if outage is not None:  # an outage that some code turned into another exception
            recover_from_outage(outage)
            return unavailable_response()
        try:
            db.session.rollback()
        except sa_exc.SQLAlchemyError:
            pass  # the 500 below is logged with its traceback all the same
        log.exception("Unexpected error on %s %s", request.method, route())
        if _wants_json():
            return {"error": "server_error"}, 500
        return render_template("errors/http.html", error=None), 500
