"""What is wrong with this configuration for production: ``idp check``, and ``idp serve`` with ``IDP_ENV=production``.

Each problem is one sentence that says what to set. The list is the issue's: an
issuer that is not https (cookies travel in clear, and are not ``Secure``), SQLite
(one host only, and no ``statement_timeout``), a generated or short
``IDP_SECRET_KEY`` (hosts would each generate their own: pairwise subjects and
every stored hash differ per host), a key-encryption secret in a file others can
read, the console mail transport (mails kept on disk, never sent), demo or test
mode, per-IP limits kept in memory while several workers count apart, no active
signing key, and a database behind the code's migrations.

The checks read the settings, the file system and the database (two light
queries); they change nothing.
"""

from __future__ import annotations

import os
import stat

from flask import current_app
from sqlalchemy import exc as sa_exc

from .. import config
from ..extensions import db
from ..oidc import keys as keystore
from . import schema

#: Shortest server secret accepted in production, characters (``secrets.token_urlsafe(48)`` gives 64).
MIN_SECRET_KEY_LENGTH = 32

GENERATE = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


def problems(workers: int) -> list[str]:
    """Every problem found, as sentences; empty when the configuration is fit for production.

    ``workers``: the worker processes ``idp serve`` runs on this host (``IDP_WORKERS``).
    """
    cfg = current_app.config
    found: list[str] = []
    issuer = cfg["IDP_ISSUER"]
    if not issuer.startswith("https://"):
        found.append(f"IDP_ISSUER is {issuer}: set it to the provider's public https:// URL (TLS ends at the reverse "
                     "proxy; cookies are then Secure and __Host- prefixed).")
    if cfg["IDP_DATABASE_URL"].startswith("sqlite"):
        found.append("IDP_DATABASE_URL is SQLite: set it to postgresql+psycopg://USER:PASSWORD@HOST/DB"
                     "?options=-c%20statement_timeout%3D10s%20-c%20lock_timeout%3D5s (every host shares it).")
    if cfg.get("IDP_SECRET_KEY_GENERATED"):
        found.append(f"IDP_SECRET_KEY is not set (a generated one in {config.secret_key_file()} is used): set the "
                     f"same IDP_SECRET_KEY on every host, made once with {GENERATE}, and never change it.")
    elif len(cfg["IDP_SECRET_KEY"]) < MIN_SECRET_KEY_LENGTH:
        found.append(f"IDP_SECRET_KEY is {len(cfg['IDP_SECRET_KEY'])} characters long: set one of at least "
                     f"{MIN_SECRET_KEY_LENGTH}, made with {GENERATE}.")
    found.extend(_key_secret_problems())
    if cfg["IDP_MAIL_URL"].lower().startswith("console"):
        found.append("IDP_MAIL_URL is console:// (mails are kept on disk, never sent): set it to "
                     "smtp://HOST:PORT?starttls=1 (or smtps://).")
    if cfg["IDP_DEMO"]:
        found.append("IDP_DEMO is on (a mailbox showing every mail under /demo): unset it.")
    if cfg["IDP_TESTING"]:
        found.append("IDP_TESTING is on (test-only settings allowed): unset it.")
    if cfg["IDP_RATE_LIMIT_STORAGE_URI"].startswith("memory") and workers > 1:
        found.append(f"IDP_RATE_LIMIT_STORAGE_URI is memory:// with {workers} workers (each counts the per-IP limits "
                     "alone, and so does each host): set it to redis://HOST:6379/0.")
    found.extend(_database_problems())
    return found


def _key_secret_problems() -> list[str]:
    if current_app.config.get("IDP_KEY_SECRET"):
        return []
    path = config.key_secret_file()
    if not path.exists():
        return ["IDP_KEY_SECRET is not set and there is no keys/key-secret: set IDP_KEY_SECRET (the same on every "
                "host; 32 random bytes, base64url) or run `idp init`."]
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        return [f"{path} (the key-encryption secret) has mode {mode:04o}, readable by others: `chmod 600 {path}`, "
                "or set IDP_KEY_SECRET in the service's environment file (mode 0600) instead."]
    return []


def _database_problems() -> list[str]:
    found = []
    try:
        current = set(db.session.scalars(schema.CURRENT))
    except sa_exc.SQLAlchemyError as error:
        db.session.rollback()
        if "alembic_version" in str(error):
            current = set()
        else:
            return [f"The database does not answer ({error.__class__.__name__}): check IDP_DATABASE_URL."]
    if not schema.at_head(current):
        at = ", ".join(sorted(current)) or "none"
        found.append(f"The database schema is at {at}, the code at {', '.join(sorted(schema.heads()))}: "
                     "run `idp init` (on one host, before starting the new version on the others).")
        db.session.rollback()
        return found  # no signing_keys table to read yet, perhaps
    keystore.forget()
    missing = [alg for alg in keystore.SUPPORTED_ALGS if not keystore.has_active_key(alg)]
    if missing:
        found.append(f"No active {' or '.join(missing)} signing key: run `idp init` (or `idp keys rotate`).")
    db.session.rollback()
    return found
