"""Error pages in French, and never a 500 for bad input.

HTML pages for people, JSON for the protocol endpoints that relying parties call.
"""

from __future__ import annotations

import logging

from flask import render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

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

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if _wants_json():
            code = "invalid_request" if error.code < 500 else "server_error"
            return {"error": code, "error_description": error.name}, error.code
        return render_template("errors/http.html", error=error), error.code

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        db.session.rollback()
        log.exception("Unexpected error on %s %s", request.method, request.path)
        if _wants_json():
            return {"error": "server_error"}, 500
        return render_template("errors/http.html", error=None), 500
