"""``/healthz`` (the process serves) and ``/readyz`` (it can serve a person), for load balancers and probes.

``/healthz`` answers ``{"status": "ok"}`` without touching anything: a process that
answers it is alive, whatever the database does (restarting it would not help).

``/readyz`` names each thing a request needs, 200 when all are there, 503 with the
same body when one is not, so that a load balancer takes the host out of rotation:

* ``database``: one trivial query, bounded by ``IDP_READYZ_DATABASE_TIMEOUT``
  (PostgreSQL's ``statement_timeout`` for that transaction only); the query is the
  read of ``alembic_version``, which the next check needs anyway;
* ``migrations``: the database is at the head revision of the code's migration
  scripts (:mod:`.schema`; computed once per process). A host rolled out before
  ``idp init`` migrated the database stays out of rotation;
* ``signing_key``: an active key exists for every algorithm the provider signs
  with, from the key store's per-process view (no query when it is fresh);
* ``mail``: ``IDP_MAIL_URL`` names a transport the mailer can use. The mail server
  is not contacted: a mail outage is handled per request (503 with a French page,
  nothing charged) and must not take every host out of rotation at once.

The answer is kept ``IDP_READYZ_CACHE_SECONDS`` (1 s) per process: a probe every
second from several balancers costs the database at most one query per second per
worker. Both answers are small constant JSON documents, cheap enough to be called
every second; neither sets a cookie. Failure reasons are short words, never an
error message (the endpoint is public).
"""

from __future__ import annotations

import json
import time

from flask import Blueprint, Response, current_app
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from .. import mail
from ..extensions import db
from ..oidc import keys as keystore
from . import schema

bp = Blueprint("ops_health", __name__)

_HEALTHY = json.dumps({"status": "ok"}).encode()


def _json(body: bytes, status: int) -> Response:
    response = Response(body, status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
def healthz():
    return _json(_HEALTHY, 200)


def _database_and_migrations() -> tuple[str, str]:
    """One read of ``alembic_version``: whether the database answers, and whether it is at head."""
    try:
        if db.engine.dialect.name == "postgresql":
            milliseconds = int(current_app.config["IDP_READYZ_DATABASE_TIMEOUT"] * 1000)
            db.session.execute(text(f"SET LOCAL statement_timeout = {max(milliseconds, 1)}"))
        current = set(db.session.scalars(schema.CURRENT))
    except sa_exc.SQLAlchemyError as error:
        db.session.rollback()
        # A missing alembic_version table: the database answers but was never migrated.
        if isinstance(error, sa_exc.ProgrammingError | sa_exc.OperationalError) and "alembic_version" in str(error):
            return "ok", "not migrated"
        return "unreachable", "unknown"
    db.session.rollback()  # end the read (and the SET LOCAL): nothing was written
    return "ok", ("ok" if schema.at_head(current) else "not at head")


def _signing_key() -> str:
    try:
        missing = [alg for alg in keystore.SUPPORTED_ALGS if not keystore.has_active_key(alg)]
    except sa_exc.SQLAlchemyError:
        db.session.rollback()
        return "unknown"
    return "ok" if not missing else "no active key"


def _mail() -> str:
    return "ok" if mail.transport_configured() else "not configured"


def readiness() -> tuple[int, dict]:
    """``(status, body)`` of ``/readyz``, computed now."""
    database, migrations = _database_and_migrations()
    checks = {
        "database": database,
        "migrations": migrations,
        "signing_key": _signing_key() if database == "ok" else "unknown",
        "mail": _mail(),
    }
    ready = all(value == "ok" for value in checks.values())
    return (200 if ready else 503), {"status": "ok" if ready else "unavailable", "checks": checks}


@bp.get("/readyz")
def readyz():
    cached = current_app.extensions.get("idp_readyz")
    now = time.monotonic()
    if cached is None or cached[0] <= now:
        status, body = readiness()
        cached = (now + current_app.config["IDP_READYZ_CACHE_SECONDS"], status, json.dumps(body).encode())
        current_app.extensions["idp_readyz"] = cached  # one assignment: other threads see the old or the new answer
    return _json(cached[2], cached[1])


def init_app(app) -> None:
    app.register_blueprint(bp)
