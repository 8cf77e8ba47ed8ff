"""Flask extensions, created once and bound to the app in the factory.

Flask-Migrate (alembic) is not among them: see :func:`init_migrations`.
"""

import sqlite3
import time

from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import Pool


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
csrf = CSRFProtect()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """The embedded SQLite database, set up per connection.

    * foreign keys (and ON DELETE CASCADE) are ignored unless asked;
    * write-ahead logging lets readers go on while a worker writes, and with
      ``synchronous=NORMAL`` a commit no longer waits for the disk twice: a crash
      keeps the database consistent, a power cut may lose the last commits;
    * the busy timeout, which makes a writer wait for another instead of failing, is
      sqlite3's ``timeout``, set by the app from ``IDP_DATABASE_BUSY_TIMEOUT``.
    """
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


#: A pooled connection idle this long (seconds) is checked before it is used again.
PING_AFTER_IDLE = 1.0


@event.listens_for(Pool, "checkin")
def _mark_idle_since(dbapi_connection, connection_record) -> None:
    connection_record.info["idp_idle_since"] = time.monotonic()


@event.listens_for(Pool, "checkout")
def _ping_if_idle(dbapi_connection, connection_record, connection_proxy) -> None:
    """Check a connection that sat in the pool for :data:`PING_AFTER_IDLE` seconds or more.

    SQLAlchemy's ``pool_pre_ping`` pings before *every* use: one more round trip
    per request on PostgreSQL, about a fifth of a token refresh. A connection in
    steady use needs none: if the database goes away while it is used, the
    statement fails, SQLAlchemy sees a disconnect and invalidates every connection
    of the pool, and the request answers 503 (:mod:`idp.errors`). What the ping
    is for is the connection that waited in the pool while the database restarted
    or a network path was cut: that one is idle, is pinged here, and when the
    ping fails the pool replaces it (``DisconnectionError`` makes the pool connect
    anew, up to three times) before the request ever sees it.
    """
    idle_since = connection_record.info.get("idp_idle_since")
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE:
        return
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        # The driver began a transaction for the ping (psycopg does): end it, so that the
        # connection is handed out idle, as SQLAlchemy expects, and a request can still
        # switch it to autocommit (idp.oidc.store.autocommit; psycopg refuses inside one).
        dbapi_connection.rollback()
    except Exception as error:  # any DBAPI error on a ping means this connection is unusable
        raise exc.DisconnectionError(f"pooled connection lost while idle: {error.__class__.__name__}") from error


def init_migrations(app) -> None:
    """Flask-Migrate, for the commands that change the schema (``idp init``, ``idp db``).

    Only the command line and the tests register it: the served app never migrates,
    and alembic weighs 10 MiB in every worker (``wsgi.py`` creates the app without it).
    """
    from pathlib import Path

    from flask_migrate import Migrate

    Migrate(app, db, directory=str(Path(__file__).parent / "migrations"))
