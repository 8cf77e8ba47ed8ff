"""Secrets: generation, keyed hashes, password hashing and constant-time checks.

Two kinds of secret, two kinds of hash:

* passwords are low-entropy, so they get Argon2id (OWASP m=19 MiB, t=2, p=1),
  rehashed at login when the parameters change;
* everything we generate ourselves (client secrets, codes, tokens, link and device
  tokens, flow identifiers) has at least 128 bits of entropy, so a fast keyed hash
  (HMAC-SHA-256 under a key derived from the server secret) is enough and keeps the
  token endpoint fast. Lookups go by that hash; a stolen table reveals nothing usable.

Memory: an Argon2id computation takes ``m`` (19 MiB) of memory, and glibc keeps what
a thread freed in that thread's arena, so a worker whose request threads each
hashed once holds 19 MiB per thread for good. The computations therefore run on
``IDP_ARGON2_CONCURRENCY`` hashing threads of the worker's own (default 1): the
request thread hands the password over and waits. A worker holds at most that
many times ``m``, reused from one hash to the next, whatever its number of
threads; more than the cores a worker may use brings nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random string with ``nbytes`` bytes of entropy."""
    return secrets.token_urlsafe(nbytes)


def _derived_key(purpose: str) -> bytes:
    secret = current_app.config["IDP_SECRET_KEY"].encode()
    return hmac.new(secret, b"idp-key-derivation:" + purpose.encode(), hashlib.sha256).digest()


def keyed_hash(purpose: str, value: str) -> str:
    """HMAC-SHA-256 of ``value`` under a per-purpose key; hex, 64 characters."""
    return hmac.new(_derived_key(purpose), value.encode(), hashlib.sha256).hexdigest()


def b64url_hmac(purpose: str, value: str) -> str:
    """HMAC-SHA-256 as unpadded base64url (for identifiers that leave the server)."""
    digest = hmac.new(_derived_key(purpose), value.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def equals(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time comparison."""
    if isinstance(a, str):
        a = a.encode()
    if isinstance(b, str):
        b = b.encode()
    return hmac.compare_digest(a, b)


# --- Passwords ------------------------------------------------------------------------

def password_hasher() -> PasswordHasher:
    cfg = current_app.config
    key = (cfg["IDP_ARGON2_TIME_COST"], cfg["IDP_ARGON2_MEMORY_COST"], cfg["IDP_ARGON2_PARALLELISM"])
    cache = current_app.extensions.setdefault("idp_password_hashers", {})
    if key not in cache:
        cache[key] = PasswordHasher(time_cost=key[0], memory_cost=key[1], parallelism=key[2])
    return cache[key]


_hashing: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, threads, executor)
_hashing_lock = threading.Lock()


def _on_hashing_threads(fn, *args):
    """``fn(*args)`` on the process's hashing threads (``IDP_ARGON2_CONCURRENCY``), waiting for it.

    Made in each process on first use (a forked worker makes its own: threads do not
    survive a fork).
    """
    global _hashing
    threads = current_app.config["IDP_ARGON2_CONCURRENCY"]
    pool = _hashing
    if pool is None or pool[0] != os.getpid() or pool[1] != threads:
        with _hashing_lock:
            pool = _hashing
            if pool is None or pool[0] != os.getpid() or pool[1] != threads:
                if pool is not None and pool[0] == os.getpid():
                    pool[2].shutdown(wait=False)
                executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2")
                pool = _hashing = (os.getpid(), threads, executor)
    return pool[2].submit(fn, *args).result()


def hash_password(password: str) -> str:
    return _on_hashing_threads(password_hasher().hash, password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Check a password; with no stored hash, spend the same time on a dummy one.

    The dummy hash makes an unknown NIR cost what a known one costs, so response
    time says nothing about whether an account exists.
    """
    ph = password_hasher()
    try:
        return _on_hashing_threads(ph.verify, stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return password_hasher().check_needs_rehash(stored_hash)


def _dummy_hash() -> str:
    ph = password_hasher()
    cache = current_app.extensions.setdefault("idp_dummy_hashes", {})
    key = (ph.time_cost, ph.memory_cost, ph.parallelism)
    if key not in cache:
        cache[key] = hash_password(random_token(16))
    return cache[key]


def link_token(form) -> str:
    """The secret of a mail link, as a link page posts it: the ``token`` its script copied from the
    URL fragment, or, without JavaScript, the whole link pasted by the person (``link``)."""
    return form.get("token") or form.get("link", "").strip().partition("#")[2]


def seal(purpose: str, text: str) -> str:
    """``text`` encrypted and authenticated (AES-256-GCM under a per-purpose key), as base64url.

    For personal data a page must get back from the browser without showing it to
    anyone who reads the cookie (Flask's session is signed, not encrypted).
    """
    nonce = os.urandom(12)
    sealed = nonce + AESGCM(_derived_key(purpose)).encrypt(nonce, text.encode(), purpose.encode())
    return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()


def unseal(purpose: str, sealed: str) -> str | None:
    """The text :func:`seal` sealed for ``purpose``; None if it was altered, or sealed for another purpose or key."""
    try:
        raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
        return AESGCM(_derived_key(purpose)).decrypt(raw[:12], raw[12:], purpose.encode()).decode()
    except (InvalidTag, ValueError, TypeError):
        return None
