"""Error pages in French, and never a 500 for bad input.

HTML pages for people, JSON for the protocol endpoints that relying parties call.
"""

from __future__ import annotations

import logging

from flask import jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .extensions import db
from .messages import msg

log = logging.getLogger(__name__)

JSON_ENDPOINTS = ("/token", "/userinfo", "/revoke", "/introspect", "/jwks.json", "/.well-known/")


def _wants_json() -> bool:
    return request.path.startswith(JSON_ENDPOINTS)


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

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
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

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        db.session.rollback()
        log.exception("Unexpected error on %s %s", request.method, request.path)
        if _wants_json():
            return {"error": "server_error"}, 500
        return render_template("errors/http.html", error=None), 500
