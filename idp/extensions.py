"""Flask extensions, created once and bound to the app in the factory.

Flask-Migrate (alembic) is not among them: see :func:`init_migrations`.
"""

import sqlite3

from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase


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


def init_migrations(app) -> None:
    """Flask-Migrate, for the commands that change the schema (``idp init``, ``idp db``).

    Only the command line and the tests register it: the served app never migrates,
    and alembic weighs 10 MiB in every worker (``wsgi.py`` creates the app without it).
    """
    from pathlib import Path

    from flask_migrate import Migrate

    Migrate(app, db, directory=str(Path(__file__).parent / "migrations"))
