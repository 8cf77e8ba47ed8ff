"""OpenID Connect Back-Channel Logout 1.0: tell the relying parties that a session has ended.

A login session has a public identifier, ``sid`` (:func:`idp.sessions.new_public_sid`),
written in every grant made during it and in every ID token issued from those grants.
When sessions end — the person logs out (``/logout``), an administrator ends them
(``idp users logout``), the password is reset (seed 004 step 6) — :func:`sessions_ended`
revokes the grants of those sessions (§2.7: refresh tokens without ``offline_access``
SHOULD be revoked; there is no ``offline_access`` here, so access and refresh tokens go
with their grant) and finds every client that took part in them and registered a
``backchannel_logout_uri``. Once the caller has committed, :meth:`Announcement.send`
signs one logout token per client and session and hands it to the background delivery.

Delivery never makes the person wait: it runs on a few threads of the worker process
(:class:`_Deliveries`), like the mails of the recovery journey, each attempt bounded by
``IDP_BACKCHANNEL_LOGOUT_TIMEOUT``, a failed one retried ``IDP_BACKCHANNEL_LOGOUT_RETRIES``
times after ``IDP_BACKCHANNEL_LOGOUT_BACKOFF`` seconds, doubled each time, from a timer
(no thread sleeps in the pool, so a partner that is down delays no other partner).

A thread pool rather than an outbox table processed by a worker: a logout token lives
two minutes (``IDP_LOGOUT_TOKEN_LIFETIME``), so durability past a process's life buys
little, while an outbox needs a table, a process to run and supervise, and statements
to poll it. What a worker that dies mid-delivery loses is the notice only: the grants
were revoked in the same transaction as the session's end, so the relying party's
tokens are refused all the same.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace
from urllib.parse import urlsplit

import requests
from flask import current_app
from joserfc import jwt
from sqlalchemy import select, update

from .. import crypto
from ..extensions import db
from ..ops import metrics
from ..models import Client, Grant, utcnow
from . import keys
from .claims import pairwise_sub

log = logging.getLogger(__name__)

#: The event a logout token carries (Back-Channel Logout §2.4).
EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: Its explicit type (§2.4, RFC 8725 §3.11): never mistaken for an ID token.
TOKEN_TYPE = "logout+jwt"
#: Answers after which another attempt makes sense; any other 4xx is the relying party's final word.
RETRYABLE_4XX = (408, 425, 429)


def _cfg(name: str):
    return current_app.config[f"IDP_{name}"]


# --- What ended, and who must hear of it -------------------------------------------------

@dataclass(frozen=True)
class Target:
    """One client that took part in one ended session."""

    sid: str
    user_id: int
    client_id: str
    uri: str
    alg: str | None


class Announcement:
    """The logout tokens to send once the transaction that ended the sessions has committed."""

    def __init__(self, targets: list[Target]):
        self.targets = targets

    def send(self) -> int:
        """Sign one logout token per target and queue its delivery; returns how many were queued."""
        if not self.targets:
            return 0
        policy = _Policy.from_config()
        deliveries = [Delivery(t.client_id, t.uri, logout_token(t)) for t in self.targets]
        for delivery in deliveries:
            _deliveries().queue(delivery, policy)
        return len(deliveries)


_grants, _clients = Grant.__table__, Client.__table__


def sessions_ended(sids: list[str]) -> Announcement:
    """Revoke the grants of the sessions ``sids`` and find the clients to notify (not committed).

    Every client with a grant of one of these sessions, revoked or not (it took part in the
    session even if it already gave its tokens back), once per session.
    """
    if not sids:
        return Announcement([])
    db.session.execute(update(Grant).where(Grant.sid.in_(sids), Grant.revoked_at.is_(None))
                       .values(revoked_at=utcnow()).execution_options(synchronize_session=False))
    rows = db.session.execute(
        select(_grants.c.sid, _grants.c.user_id, _clients.c.client_id, _clients.c.backchannel_logout_uri,
               _clients.c.id_token_signed_response_alg)
        .distinct()
        .select_from(_grants.join(_clients, _clients.c.id == _grants.c.client_id))
        .where(_grants.c.sid.in_(sids), _grants.c.user_id.is_not(None), _clients.c.backchannel_logout_uri.is_not(None))
    ).all()
    return Announcement([Target(*row) for row in rows])


def logout_token(target: Target) -> str:
    """The signed logout token (§2.4): who logged out (``sub`` and ``sid``), for whom, and never a ``nonce``.

    Signed like the client's ID tokens, with the active key of its algorithm; ``sub`` is
    the pairwise subject that client knows the person by.
    """
    alg = target.alg or _cfg("SIGNING_ALG")
    key = keys.signing_key(alg)
    now = int(time.time())
    claims = {
        "iss": _cfg("ISSUER"),
        "aud": target.client_id,
        "iat": now,
        "exp": now + _cfg("LOGOUT_TOKEN_LIFETIME"),
        "jti": crypto.random_token(16),
        "sub": pairwise_sub(SimpleNamespace(id=target.user_id), SimpleNamespace(client_id=target.client_id)),
        "sid": target.sid,
        "events": {EVENT: {}},
    }
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": TOKEN_TYPE}, claims, key)


# --- Delivery ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Delivery:
    client_id: str
    uri: str
    token: str

    @property
    def host(self) -> str:
        """What a log line may say of the address (its path or query might hold a partner's secret)."""
        return urlsplit(self.uri).netloc


@dataclass(frozen=True)
class _Policy:
    """The settings a delivery follows, read in the request (the delivery threads have no app context)."""

    timeout: float
    retries: int
    backoff: float

    @classmethod
    def from_config(cls) -> _Policy:
        return cls(float(_cfg("BACKCHANNEL_LOGOUT_TIMEOUT")), max(0, int(_cfg("BACKCHANNEL_LOGOUT_RETRIES"))),
                   max(0.0, float(_cfg("BACKCHANNEL_LOGOUT_BACKOFF"))))


class _Deliveries:
    """The deliveries of one process: a small thread pool for the attempts, timers for the waits."""

    def __init__(self, threads: int):
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="idp-backchannel")
        self._pending = 0
        self._idle = threading.Condition()

    def queue(self, delivery: Delivery, policy: _Policy) -> None:
        with self._idle:
            self._pending += 1
        self._pool.submit(self._attempt, delivery, policy, 1)

    def _attempt(self, delivery: Delivery, policy: _Policy, attempt: int) -> None:
        retry_in = None
        try:
            problem, retryable = _post(delivery, policy.timeout)
            if problem is None:
                return
            attempts = policy.retries + 1
            if retryable and attempt < attempts:
                retry_in = policy.backoff * 2 ** (attempt - 1)
            metrics.backchannel_failed(given_up=retry_in is None)  # idp_backchannel_logout_failures_total
            log.warning("Back-channel logout to client %s at %s failed (attempt %d of %d): %s; %s",
                        delivery.client_id, delivery.host, attempt, attempts, problem,
                        f"next attempt in {retry_in:g} s" if retry_in is not None else "given up")
        except Exception:  # never let a delivery break the worker
            metrics.backchannel_failed(given_up=True)
            log.exception("Back-channel logout to client %s failed", delivery.client_id)
        finally:
            if retry_in is not None:
                timer = threading.Timer(retry_in, self._retry, (delivery, policy, attempt + 1))
                timer.daemon = True
                timer.start()
            else:
                self._done()

    def _retry(self, delivery: Delivery, policy: _Policy, attempt: int) -> None:
        try:
            self._pool.submit(self._attempt, delivery, policy, attempt)
        except RuntimeError:  # the interpreter is shutting down
            self._done()

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def wait(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)


def _post(delivery: Delivery, timeout: float) -> tuple[str | None, bool]:
    """One attempt (§2.5): the token as a form POST. (None, _) when the relying party took it (2xx,
    §2.8 allows 204); otherwise what went wrong, without the token, and whether to try again.
    Redirects are not followed: the registered address is the only one the token goes to."""
    try:
        response = requests.post(delivery.uri, data={"logout_token": delivery.token}, timeout=timeout,
                                 allow_redirects=False, headers={"Cache-Control": "no-store"})
    except requests.RequestException as exc:
        return type(exc).__name__, True  # the message would quote the address (path and query)
    status = response.status_code
    response.close()
    if 200 <= status < 300:
        return None, False
    return f"HTTP {status}", status >= 500 or status in RETRYABLE_4XX


_by_pid: dict[int, _Deliveries] = {}
_by_pid_lock = threading.Lock()


def _deliveries() -> _Deliveries:
    """This process's deliveries, made after a fork (each server worker has its own threads)."""
    pid = os.getpid()
    with _by_pid_lock:
        found = _by_pid.get(pid)
        if found is None:
            found = _by_pid[pid] = _Deliveries(max(1, int(_cfg("BACKCHANNEL_LOGOUT_THREADS"))))
        return found


def longest_delivery() -> float:
    """How long a delivery may take at most with the settings: every attempt times out, every wait is spent."""
    policy = _Policy.from_config()
    waits = sum(policy.backoff * 2 ** i for i in range(policy.retries))
    return (policy.retries + 1) * policy.timeout + waits + 1.0


def wait_for_deliveries(timeout: float = 10.0) -> bool:
    """Wait until this process has no delivery queued, running or waiting for a retry; False on timeout.

    For a command that must not exit before its notices are out (``idp users logout``), and the tests.
    """
    with _by_pid_lock:
        found = _by_pid.get(os.getpid())
    return True if found is None else found.wait(timeout)
