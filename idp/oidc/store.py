"""Codes and tokens as the protocol endpoints read and write them: one Core statement each.

The token, userinfo, introspection and revocation endpoints run on every API call of
every relying party. Loading a token with the ORM (a ``Token``, its ``Grant``, its
``User`` and its ``Client``, each an instrumented object in the session's identity
map, then flushed by the unit of work) cost several times the SQL itself. Here:

* each lookup is one joined ``SELECT`` built once at import, executed on the
  session's connection (so in its transaction, committed with it), and its row is
  read into small plain records (:class:`TokenRecord`, :class:`CodeRecord`) that
  carry exactly what the endpoints use;
* a new token is one Core ``INSERT``, no ORM object;
* the records share their behaviour with the models (:class:`~idp.models.grants.TokenState`,
  :class:`~idp.models.grants.CodeState`): expiry, revocation, the single-use UPDATEs.

Nothing is cached here: every request reads the token's row, so a revocation, a used
refresh token or a revoked grant is seen by the next request on any worker or host.

The statements run on the request's own Core connection (:func:`connection`), not on
the ORM session: no object of these endpoints is in a session, and the session's
transaction machinery (autobegin, flush, commit, close, remove) cost more than the
statements themselves on a SQLite token request. A request that writes two rows that
go together (a code or refresh token consumed and its successor stored) commits once
(:func:`commit`); one that runs a single statement, or only reads, asks for
:func:`autocommit` first: on PostgreSQL each statement is then its own transaction,
without the ``BEGIN`` and ``COMMIT``/``ROLLBACK`` round trips around it.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, g
from sqlalchemy import bindparam, insert, select
from sqlalchemy.engine import Connection

from .. import audit, crypto
from ..extensions import db
from ..models import AuthorizationCode, Client, Grant, Token, User, utcnow
from ..models.grants import CodeState, TokenState
from ..regimes import name as regime_name

_tokens, _codes, _grants = Token.__table__, AuthorizationCode.__table__, Grant.__table__
_users, _clients = User.__table__, Client.__table__

TOKEN_COLUMNS = ("id", "client_id", "grant_id", "user_id", "refresh_token_hash", "scope", "issued_at", "expires_in",
                 "refresh_expires_at", "access_revoked_at", "refresh_used_at")
CODE_COLUMNS = ("id", "grant_id", "redirect_uri", "code_challenge", "code_challenge_method", "expires_at", "used_at")
GRANT_COLUMNS = ("id", "client_id", "user_id", "scope", "nonce", "auth_time", "acr", "amr", "sid", "claims",
                 "created_at", "revoked_at")
#: What a relying party may learn about a person (:func:`idp.oidc.claims.user_claims`); no NIR, no hash.
USER_COLUMNS = ("id", "given_name", "family_name", "birth_date", "gender", "email", "email_verified",
                "regime_code", "caisse", "affiliation")


class Record:
    """Plain values read from one row, by column name (``prefix`` + name in the row)."""

    __slots__ = ()
    COLUMNS: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row, prefix: str = ""):
        record = cls.__new__(cls)
        for name in cls.COLUMNS:
            setattr(record, name, row[prefix + name])
        return record


class GrantRecord(Record):
    __slots__ = GRANT_COLUMNS
    COLUMNS = GRANT_COLUMNS


class UserRecord(Record):
    """A person as their claims need them (ID token, userinfo, pairwise ``sub``)."""

    __slots__ = USER_COLUMNS
    COLUMNS = USER_COLUMNS

    @property
    def regime_name(self) -> str | None:
        return regime_name(self.regime_code)


class ClientRef(Record):
    """The client a token was issued to, as the resource endpoints need it: its two identifiers,
    and how it wants UserInfo (``client_metadata``, what Authlib's userinfo endpoint reads:
    ``userinfo_signed_response_alg``, OIDC Core §5.3.2)."""

    __slots__ = ("id", "client_id", "userinfo_signed_response_alg")
    COLUMNS = ("id", "client_id", "userinfo_signed_response_alg")

    @property
    def client_metadata(self) -> dict:
        return {"userinfo_signed_response_alg": self.userinfo_signed_response_alg}


class TokenRecord(Record, TokenState):
    """A token with its grant, person and client; ``matched`` says which of its values was presented."""

    __slots__ = (*TOKEN_COLUMNS, "grant", "user", "client", "matched")
    COLUMNS = TOKEN_COLUMNS


class CodeRecord(Record, CodeState):
    """An authorization code with its grant and its person."""

    __slots__ = (*CODE_COLUMNS, "grant", "user")
    COLUMNS = CODE_COLUMNS


def _labelled(table, columns, prefix: str) -> list:
    return [table.c[name].label(prefix + name) for name in columns]


def _token_by(column):
    """A token by one of its hashes, with its client, grant and person: one joined SELECT."""
    return (
        select(*_labelled(_tokens, TOKEN_COLUMNS, ""), _clients.c.client_id.label("c_client_id"),
               _clients.c.userinfo_signed_response_alg.label("c_userinfo_signed_response_alg"),
               *_labelled(_grants, GRANT_COLUMNS, "g_"), *_labelled(_users, USER_COLUMNS, "u_"))
        .select_from(
            _tokens.join(_clients, _clients.c.id == _tokens.c.client_id)
            .outerjoin(_grants, _grants.c.id == _tokens.c.grant_id)
            .outerjoin(_users, _users.c.id == _tokens.c.user_id)
        )
        .where(column == bindparam("hash"))
    )


_TOKEN_BY_ACCESS = _token_by(_tokens.c.access_token_hash)
_TOKEN_BY_REFRESH = _token_by(_tokens.c.refresh_token_hash)
_CODE_BY_HASH = (
    select(*_labelled(_codes, CODE_COLUMNS, ""), *_labelled(_grants, GRANT_COLUMNS, "g_"),
           *_labelled(_users, USER_COLUMNS, "u_"))
    .select_from(
        _codes.join(_grants, _grants.c.id == _codes.c.grant_id).outerjoin(_users, _users.c.id == _grants.c.user_id)
    )
    .where(_codes.c.code_hash == bindparam("hash"))
)
_INSERT_TOKEN = insert(_tokens)


def _token(row, matched: str) -> TokenRecord:
    token = TokenRecord.from_row(row)
    token.client = ClientRef.from_row({"id": row["client_id"], "client_id": row["c_client_id"],
                                       "userinfo_signed_response_alg": row["c_userinfo_signed_response_alg"]})
    token.grant = GrantRecord.from_row(row, "g_") if row["grant_id"] is not None else None
    token.user = UserRecord.from_row(row, "u_") if row["user_id"] is not None else None
    token.matched = matched
    return token


def connection() -> Connection:
    """This request's connection for the protocol statements, checked out from the pool once.

    Returned to the pool (rolled back if not committed) when the application context
    ends (:func:`close_connection`), on success, error or database outage alike.
    """
    conn = g.get("idp_connection")
    if conn is None:
        engine = db.engine
        conn = engine.connect()
        if g.get("idp_autocommit") and engine.dialect.name != "sqlite":
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            g.idp_autocommitting = True
        g.idp_connection = conn
    return conn


def autocommit() -> None:
    """Run this request's statements in autocommit mode: each one is its own transaction.

    For the requests that read, or write a single row (``client_credentials``, userinfo,
    introspection): a statement is atomic by itself, and PostgreSQL then needs one round
    trip per statement instead of three (``BEGIN``, the statement, ``COMMIT``). Called
    before the request's first statement; a request that must change several rows at
    once (a code or refresh token exchanged) never calls it.

    Not on SQLite: there is no round trip to save (a SELECT starts no transaction, an
    INSERT commits inside the library either way), and switching the connection's mode
    and back costs more than the commit.
    """
    if "idp_connection" not in g:
        g.idp_autocommit = True


def commit() -> None:
    """Commit what this request wrote on :func:`connection`, if anything (in autocommit mode, it is)."""
    conn = g.get("idp_connection")
    if conn is not None and conn.in_transaction() and not g.get("idp_autocommitting"):
        conn.commit()
    audit.committed()


def rollback() -> None:
    conn = g.get("idp_connection")
    if conn is not None:
        conn.rollback()
    audit.rolled_back()


def close_connection(exc: BaseException | None = None) -> None:
    """``teardown_request`` (and ``teardown_appcontext``): return the connection to the pool.

    At the end of the request, not only of its application context: a context pushed
    around several requests (the tests, the CLI) would otherwise keep one connection,
    and its mode, from one request to the next. Anything not committed is rolled back
    by the pool; a connection that died (database outage) was already invalidated by
    SQLAlchemy and is discarded.
    """
    g.pop("idp_autocommit", None)
    g.pop("idp_autocommitting", None)
    conn = g.pop("idp_connection", None)
    if conn is not None:
        conn.close()


def _one(statement, value: str):
    return connection().execute(statement, {"hash": value}).mappings().first()


def _cfg(name: str):
    return current_app.config[f"IDP_{name}"]


class TokenStore:
    ACCESS = "access-token"
    REFRESH = "refresh-token"
    CODE = "authorization-code"

    @classmethod
    def find(cls, value: str, hint: str | None = None) -> TokenRecord | None:
        """A token by its value, either of its two; remembers which matched (``matched``)."""
        if not value or len(value) > 256:
            return None
        order = ("refresh_token", "access_token") if hint == "refresh_token" else ("access_token", "refresh_token")
        for kind in order:
            token = cls.find_refresh(value) if kind == "refresh_token" else cls.find_access(value)
            if token is not None:
                return token
        return None

    @classmethod
    def find_access(cls, value: str) -> TokenRecord | None:
        row = _one(_TOKEN_BY_ACCESS, crypto.keyed_hash(cls.ACCESS, value))
        return _token(row, "access_token") if row is not None else None

    @classmethod
    def find_refresh(cls, value: str) -> TokenRecord | None:
        row = _one(_TOKEN_BY_REFRESH, crypto.keyed_hash(cls.REFRESH, value))
        return _token(row, "refresh_token") if row is not None else None

    @classmethod
    def find_code(cls, value: str) -> CodeRecord | None:
        """An authorization code with its grant and person (one SELECT)."""
        row = _one(_CODE_BY_HASH, crypto.keyed_hash(cls.CODE, value))
        if row is None:
            return None
        code = CodeRecord.from_row(row)
        code.grant = GrantRecord.from_row(row, "g_")
        code.user = UserRecord.from_row(row, "u_") if row["g_user_id"] is not None else None
        return code

    @classmethod
    def save(cls, token: dict, request) -> None:
        """Store what the token endpoint issues: one INSERT, in the request's transaction.

        Not committed here: the ID token is made next, and the token endpoint commits once,
        with the code or refresh token consumed, when the answer is ready
        (``client_credentials``: in autocommit mode, this INSERT is all it writes).
        """
        now = utcnow()
        grant_source = request.authorization_code or request.refresh_token
        refresh = token.get("refresh_token")
        refresh_expires_at = None
        if refresh:
            refresh_expires_at = now + timedelta(seconds=_cfg("REFRESH_TOKEN_LIFETIME"))
            if grant_source is not None:  # never past the grant's own end
                grant_end = grant_source.grant.created_at + timedelta(seconds=_cfg("GRANT_LIFETIME"))
                refresh_expires_at = min(refresh_expires_at, grant_end)
        connection().execute(_INSERT_TOKEN, {
            "client_id": request.client.id,
            "grant_id": grant_source.grant_id if grant_source is not None else None,
            "user_id": request.user.id if request.user is not None else None,
            "access_token_hash": crypto.keyed_hash(cls.ACCESS, token["access_token"]),
            "refresh_token_hash": crypto.keyed_hash(cls.REFRESH, refresh) if refresh else None,
            "scope": token.get("scope", ""),
            "issued_at": now,
            "expires_in": int(token["expires_in"]),
            "refresh_expires_at": refresh_expires_at,
            "access_revoked_at": None,
            "refresh_used_at": None,
        })
