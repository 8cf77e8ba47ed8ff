"""Filler rows for the scale runs: N accounts and M live tokens, loaded in seconds, not hours.

A provider in service holds many people and many live tokens, and its hot
paths are index lookups in those tables (a NIR at login, a token hash at
userinfo, refresh and introspection, a nonce among the client's grants at
/authorize). The filler rows make those indexes as deep as in service; the
virtual users still log in with their own accounts, so no scenario touches a
filler row directly.

What is loaded, as the provider itself would store it:

* accounts: a valid NIR each (:func:`idp.nir.control_key`), distinct e-mails,
  all with the one Argon2id hash the bench accounts share (computing a million
  hashes would take hours and change nothing: a verification costs the same
  whatever the salt);
* tokens: one grant per token (a login with the mailed code: ``acr`` mfa, its
  own nonce), and a token with an access and a refresh value, both stored as
  the keyed hashes of :class:`idp.oidc.grants.TokenStore`, issued now with the
  provider's lifetimes (the access value live for 10 minutes, the refresh value
  for a day, by default). The values hashed are
  ``filler-<n>`` rather than random: nobody presents them, and an HMAC output
  is as spread over the index either way. The tokens are spread over the
  filler accounts (over the bench accounts when there are none).

How: SQLAlchemy Core ``insert()`` executemany, 10,000 rows a statement, on
SQLite; ``COPY ... FROM STDIN`` (psycopg 3) on PostgreSQL, then ``VACUUM
ANALYZE`` so that the planner has the statistics and autovacuum has no
million-row backlog to work through during the timed windows (a database in
service has both). Each table loads in one transaction, its secondary indexes
built after its rows. Identifiers are given explicitly, after the existing
ones, so that tokens can name their grant without reading it back;
PostgreSQL's sequences are moved past them.

:func:`seed` runs inside the application context of :func:`targets.prepare_idp`,
which has the schema, the bench client and the password hash; ``bench/run.py
--accounts N --tokens M`` (or ``--scale``) calls it before a run. Alone, this
script times the loading on a fresh database (nothing served)::

    .venv/bin/python bench/seed.py --accounts 1M --tokens 1M
    .venv/bin/python bench/seed.py --accounts 1M --tokens 1M --database postgresql
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import time
from contextlib import contextmanager
from itertools import islice
from typing import Iterator

from flask import current_app
from sqlalchemy import Table, func, insert, select, text

from idp import crypto, nir
from idp.extensions import db
from idp.models import Grant, Token, User, utcnow
from idp.models.clock import epoch
from idp.oidc.acr import ACR_MFA
from idp.oidc.grants import TokenStore

BATCH = 10_000
LOAD_CACHE_KIB = 1024 * 1024  # SQLite's page cache while loading: 1 GiB


def seed(accounts: int, tokens: int, *, password_hash: str, client_pk: int, scope: str) -> dict:
    """Load the filler rows; the seconds each table took (and the clean-up after them on PostgreSQL)."""
    engine = db.engine
    load = _copy if engine.dialect.name == "postgresql" else _insert
    timings: dict[str, float] = {}

    first_user = _next_id(User.id)
    if accounts:
        started = time.perf_counter()
        load(User.__table__, *_accounts(first_user, accounts, password_hash))
        timings["accounts"] = time.perf_counter() - started

    if tokens:
        owners = range(first_user, first_user + accounts) if accounts else _ids(User.id)
        if not owners:
            raise SystemExit("live tokens belong to accounts: there is none (--accounts)")
        started = time.perf_counter()
        first_grant = _next_id(Grant.id)
        load(Grant.__table__, *_grants(first_grant, tokens, owners, client_pk, scope))
        load(Token.__table__, *_tokens(_next_id(Token.id), first_grant, tokens, owners, client_pk, scope))
        timings["tokens"] = time.perf_counter() - started

    if engine.dialect.name == "postgresql" and (accounts or tokens):
        started = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("users", "grants", "tokens"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"))
            conn.execute(text("VACUUM ANALYZE users, grants, tokens"))
        timings["vacuum_analyze"] = time.perf_counter() - started
    return timings


def _next_id(column) -> int:
    with db.engine.connect() as conn:
        return (conn.scalar(select(func.max(column))) or 0) + 1


def _ids(column) -> list[int]:
    with db.engine.connect() as conn:
        return list(conn.scalars(select(column).order_by(column)))


# --- The rows: driver-ready tuples, the constants passed once through their column's type ------------

def filler_nir(n: int) -> str:
    """The n-th filler NIR: women born in March 1990, department 01–95, commune 001–990, order 001–999.

    Distinct from the bench accounts' (men born in May 1985) and valid for up to
    93 million accounts.
    """
    n, order = divmod(n, 999)
    department, commune = divmod(n, 990)
    if department >= 95:
        raise ValueError("more filler accounts than NIRs in this range")
    first13 = f"29003{department + 1:02d}{commune + 1:03d}{order + 1:03d}"
    return f"{first13}{nir.control_key(first13):02d}"


def _accounts(first_id: int, count: int, password_hash: str) -> tuple[tuple, Iterator[tuple]]:
    columns = ("id", "nir", "password_hash", "email", "email_verified", "birth_date", "given_name", "family_name",
               "gender", "regime_code", "caisse", "affiliation", "created_at")
    verified, born, now = _bound(User.email_verified, True), _bound(User.birth_date, dt.date(1990, 3, 15)), \
        _bound(User.created_at, utcnow())
    return columns, ((first_id + n, filler_nir(n), password_hash, f"filler.{n}@exemple.fr", verified, born, "Camille",
                      "Durand", "female", "01", "CPAM de l'Ain", "affiliated", now) for n in range(count))


def _grants(first_id: int, count: int, owners, client_pk: int, scope: str) -> tuple[tuple, Iterator[tuple]]:
    columns = ("id", "client_id", "user_id", "scope", "nonce", "auth_time", "acr", "amr", "created_at")
    now = utcnow()
    auth_time, amr, created_at = epoch(now), _bound(Grant.amr, ["pwd", "otp", "mfa"]), _bound(Grant.created_at, now)
    return columns, ((first_id + n, client_pk, owners[n % len(owners)], scope, secrets.token_urlsafe(16), auth_time,
                      ACR_MFA, amr, created_at) for n in range(count))


def _tokens(first_id: int, first_grant: int, count: int, owners, client_pk: int,
            scope: str) -> tuple[tuple, Iterator[tuple]]:
    columns = ("id", "client_id", "grant_id", "user_id", "access_token_hash", "refresh_token_hash", "scope",
               "issued_at", "expires_in", "refresh_expires_at")
    config = current_app.config
    now = utcnow()
    refresh_lifetime = min(config["IDP_REFRESH_TOKEN_LIFETIME"], config["IDP_GRANT_LIFETIME"])
    issued_at = _bound(Token.issued_at, now)
    refresh_expires_at = _bound(Token.refresh_expires_at, now + dt.timedelta(seconds=refresh_lifetime))
    access, refresh = _keyed_hasher(TokenStore.ACCESS), _keyed_hasher(TokenStore.REFRESH)
    return columns, ((first_id + n, client_pk, first_grant + n, owners[n % len(owners)], access(f"filler-{n}"),
                      refresh(f"filler-{n}"), scope, issued_at, config["IDP_ACCESS_TOKEN_LIFETIME"],
                      refresh_expires_at) for n in range(count))


def _bound(column, value):
    """``value`` as SQLAlchemy hands it to the driver for ``column`` (SQLite: datetimes as its strings, JSON as text).

    Done once per constant instead of once per row: SQLAlchemy's per-row
    parameter processing was half the loading time.
    """
    dialect = db.engine.dialect
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return process(value) if process else value


def _keyed_hasher(purpose: str):
    """:func:`idp.crypto.keyed_hash` for one purpose, its key derived once (2 million hashes: seconds, not tens)."""
    key = crypto._derived_key(purpose)

    def keyed_hash(value: str) -> str:
        return hmac.digest(key, value.encode(), "sha256").hex()

    assert keyed_hash("filler-0") == crypto.keyed_hash(purpose, "filler-0"), "idp.crypto.keyed_hash has changed"
    return keyed_hash


# --- The loaders: a table, its columns, its rows -------------------------------------------------------

def _insert(table: Table, columns: tuple, rows: Iterator[tuple]) -> None:
    """A Core ``insert()`` compiled once, executemany by batches, in one transaction.

    The page cache of this one connection is made large while it loads, so that
    the rows and the indexes built after them are written once.
    """
    compiled = insert(table).compile(dialect=db.engine.dialect, column_keys=list(columns))
    assert tuple(compiled.positiontup) == columns, f"{table.name}: columns {columns} not in the table's order"
    with db.engine.begin() as conn:
        cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
        conn.exec_driver_sql(f"PRAGMA cache_size = -{LOAD_CACHE_KIB}")
        with _indexes_built_after(conn, table):
            while batch := list(islice(rows, BATCH)):
                conn.exec_driver_sql(compiled.string, batch)
        conn.exec_driver_sql(f"PRAGMA cache_size = {cache}")


def _copy(table: Table, columns: tuple, rows: Iterator[tuple]) -> None:
    """PostgreSQL's ``COPY ... FROM STDIN``: the rows streamed in one statement, no round trip per batch.

    Foreign keys are not checked row by row while loading (``session_replication_role``
    for this transaction only): the rows name the client, users and grants just
    written, and those checks were most of the time.
    """
    with db.engine.begin() as conn, conn.connection.driver_connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")  # the index builds sort in memory
        with _indexes_built_after(conn, table):
            with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)


@contextmanager
def _indexes_built_after(conn, table: Table):
    """The table's secondary indexes dropped while it loads, then built again from their own definitions.

    Their keys come in random order (hashes, nonces): inserted row by row, each
    one lands on a page of its own, which the next thousands evict; built at the
    end, they are sorted once. The indexes behind a constraint (primary and
    SQLite's unique keys) stay. Within the loading transaction: all or nothing.
    """
    if conn.dialect.name == "postgresql":
        query = ("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :table "
                 "AND indexname NOT IN (SELECT conname FROM pg_constraint)")
    else:
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :table AND sql IS NOT NULL"
    indexes = conn.execute(text(query), {"table": table.name}).all()
    for name, _ in indexes:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    yield
    for _, definition in indexes:
        conn.exec_driver_sql(definition)


def main() -> None:
    import argparse
    import shutil

    from run import parse_count
    from targets import database_url, idp_environment, prepare_idp, temporary_dir

    parser = argparse.ArgumentParser(description="Time the loading of filler accounts and live tokens on a fresh "
                                                 "database (the bench's own preparation, then this module's rows).")
    parser.add_argument("--database", default="sqlite",
                        help="sqlite (a throw-away file, deleted after), postgresql (database bench_h, recreated) "
                             "or a SQLAlchemy URL (PostgreSQL: a database whose name starts with 'bench', recreated)")
    parser.add_argument("--accounts", type=parse_count, default=1_000_000, help="filler accounts (default 1M)")
    parser.add_argument("--tokens", type=parse_count, default=1_000_000,
                        help="live tokens, each with its grant (default 1M)")
    args = parser.parse_args()
    work = temporary_dir()
    try:
        url, _ = database_url(args.database, work)
        env = idp_environment(url, "http://127.0.0.1:9", "smtp://127.0.0.1:9")
        timings = prepare_idp({k: v for k, v in env.items() if k.startswith("IDP_")}, 0, args.accounts,
                              args.tokens)[3]
    finally:
        shutil.rmtree(work)
    if args.accounts:
        print(f"accounts: {args.accounts / timings['accounts']:,.0f} rows/s")
    if args.tokens:
        print(f"tokens: {args.tokens / timings['tokens']:,.0f} tokens/s (a grant and a token each: "
              f"{2 * args.tokens / timings['tokens']:,.0f} rows/s)")


if __name__ == "__main__":
    main()
