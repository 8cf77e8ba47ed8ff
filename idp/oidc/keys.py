"""The signing key store: generation, encryption at rest, rotation and the JWKS.

Keys live in the database so that every worker and host signs with the same key.
Each process reads the key table at most every ``IDP_KEY_CACHE_SECONDS`` (5 s):
the published set (JWKS, pre-serialised with its ``ETag``) and which key is
active; decrypted keys stay in a small per-process cache by ``kid``. A rotation,
retirement or removal is seen at once by the process that made it and by every
other worker and host within that delay. That is safe because a key is published
(status ``next``) before it signs, and stays published once retired: a token
signed during those seconds with the previous key still verifies everywhere.

Private keys are encrypted with AES-256-GCM under the key-encryption secret
(``IDP_KEY_SECRET``, or ``keys/key-secret`` written by ``idp init``); the ``kid``
is bound as associated data, so a ciphertext cannot be moved to another row.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app, g
from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import select

from ..config import ensure_key_secret, key_secret_file
from .. import audit
from ..extensions import db
from ..models import SigningKey, utcnow

SUPPORTED_ALGS = ("RS256", "ES256")


class KeyStoreError(RuntimeError):
    pass


# --- encryption at rest ---------------------------------------------------------------

def _kek() -> bytes:
    secret = current_app.config.get("IDP_KEY_SECRET")
    if not secret:
        if not key_secret_file().exists():
            raise KeyStoreError("No key-encryption secret: set IDP_KEY_SECRET or run `idp init`.")
        secret = ensure_key_secret()
    raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    if len(raw) != 32:
        raise KeyStoreError("IDP_KEY_SECRET must be 32 bytes, base64url-encoded.")
    return raw


def seal(associated: str, data: bytes) -> bytes:
    """``data`` encrypted under the key-encryption secret, bound to ``associated`` (AES-256-GCM).

    For the private keys (bound to their ``kid``) and for the few other secrets the
    provider must be able to read back (a client_secret_jwt client's secret,
    :mod:`idp.oidc.client_auth`): a copy of the database alone reveals none of them.
    """
    nonce = os.urandom(12)
    return nonce + AESGCM(_kek()).encrypt(nonce, data, associated.encode())


def unseal(associated: str, blob: bytes) -> bytes:
    """What :func:`seal` encrypted; raises ``cryptography``'s ``InvalidTag`` if it was bound elsewhere."""
    return AESGCM(_kek()).decrypt(blob[:12], blob[12:], associated.encode())


def _encrypt(kid: str, pem: bytes) -> bytes:
    return seal(kid, pem)


def _decrypt(kid: str, blob: bytes) -> bytes:
    return unseal(kid, blob)


# --- generation -----------------------------------------------------------------------

def _generate(alg: str) -> SigningKey:
    params = {"alg": alg, "use": "sig"}
    if alg == "RS256":
        key = RSAKey.generate_key(2048, parameters=params, private=True)
    elif alg == "ES256":
        key = ECKey.generate_key("P-256", parameters=params, private=True)
    else:
        raise KeyStoreError(f"Unsupported algorithm {alg}")
    kid = key.thumbprint()
    public = key.as_dict(private=False)
    public["kid"] = kid
    return SigningKey(
        kid=kid,
        alg=alg,
        status="next",
        public_jwk=public,
        private_key_encrypted=_encrypt(kid, key.as_pem(private=True)),
    )


def _keys(alg: str, status: str) -> list[SigningKey]:
    return list(
        db.session.scalars(
            select(SigningKey).where(SigningKey.alg == alg, SigningKey.status == status).with_for_update()
        )
    )


def ensure_keys() -> list[str]:
    """Create an active and a next key for each algorithm that lacks them (idempotent)."""
    created = []
    for alg in SUPPORTED_ALGS:
        if not _keys(alg, "active"):
            key = _generate(alg)
            key.status, key.activated_at = "active", utcnow()
            db.session.add(key)
            created.append(key.kid)
        if not _keys(alg, "next"):
            key = _generate(alg)
            db.session.add(key)
            created.append(key.kid)
    db.session.commit()
    forget()
    return created


def _lock_alg(alg: str) -> None:
    """Lock every key of ``alg`` until the transaction ends (PostgreSQL; SQLite takes its write lock later).

    A rotation started meanwhile elsewhere waits here, then its next statements (new
    snapshots under READ COMMITTED) see the keys as that rotation left them: two
    administrators, or two hosts' cron jobs, never leave two active keys, and a
    scheduled rotation (``older_than``) sees the fresh key and does nothing.
    """
    db.session.execute(select(SigningKey.kid).where(SigningKey.alg == alg).with_for_update()).all()


def key_age(key: SigningKey) -> float:
    """Seconds since the key started signing (since it was made, for a key not yet active)."""
    return (utcnow() - (key.activated_at or key.created_at)).total_seconds()


def rotate(algs: tuple[str, ...] = SUPPORTED_ALGS, older_than: float | None = None) -> list[tuple[str, str, str]]:
    """``next`` becomes active, active becomes retired, a new ``next`` is made.

    One transaction; rows are locked so two administrators rotating at once
    cannot leave two active keys. With ``older_than`` (seconds), an algorithm whose
    active key has signed for less than that is left as it is (a scheduled
    rotation: ``idp keys rotate --if-older-than 90d`` from a daily cron).
    Returns ``(alg, old_kid, new_kid)`` per algorithm rotated.
    """
    changes = []
    now = utcnow()
    for alg in algs:
        _lock_alg(alg)
        actives, nexts = _keys(alg, "active"), _keys(alg, "next")
        if older_than is not None and actives and min(key_age(k) for k in actives) < older_than:
            continue
        if not nexts:
            nexts = [_generate(alg)]
            db.session.add(nexts[0])
        promoted = nexts[0]
        for old in actives:
            old.status, old.retired_at = "retired", now
        promoted.status, promoted.activated_at = "active", now
        db.session.add(_generate(alg))
        changes.append((alg, actives[0].kid if actives else "-", promoted.kid))
        audit.record("key_rotated", detail={"alg": alg, "kid": promoted.kid,
                                            "retired": actives[0].kid if actives else None})
    db.session.commit()
    forget()
    return changes


def verification_horizon() -> int:
    """How long a token signed by a key may still be presented, seconds: a retired key is kept published that long."""
    cfg = current_app.config
    return max(cfg["IDP_ID_TOKEN_LIFETIME"], cfg["IDP_ACCESS_TOKEN_LIFETIME"], cfg["IDP_LOGOUT_TOKEN_LIFETIME"])


def retire(kid: str) -> SigningKey:
    """Take a ``next`` key out of the rotation; the active key must be rotated instead."""
    key = db.session.get(SigningKey, kid, with_for_update=True)
    if key is None:
        raise KeyStoreError(f"No key {kid}.")
    if key.status == "active":
        raise KeyStoreError("This key signs: `idp keys rotate` retires it and activates the next key.")
    if key.status == "retired":
        raise KeyStoreError("This key is already retired: `idp keys remove` unpublishes it.")
    key.status, key.retired_at = "retired", utcnow()
    db.session.commit()
    forget()
    return key


def remove(kid: str, force: bool = False) -> None:
    """Unpublish a retired key once no token it signed can still be valid."""
    key = db.session.get(SigningKey, kid, with_for_update=True)
    if key is None:
        raise KeyStoreError(f"No key {kid}.")
    if key.status != "retired":
        raise KeyStoreError("Only a retired key can be removed.")
    horizon = verification_horizon()
    age = (utcnow() - (key.retired_at or key.created_at)).total_seconds()
    if age < horizon and not force:
        raise KeyStoreError(
            f"Retired {int(age)} s ago: ID tokens it signed may be valid for {horizon} s. Use --force to remove anyway."
        )
    db.session.delete(key)
    db.session.commit()
    forget()


def all_keys() -> list[SigningKey]:
    order = {"active": 0, "next": 1, "retired": 2}
    keys = db.session.scalars(select(SigningKey)).all()
    return sorted(keys, key=lambda k: (k.alg, order[k.status], k.created_at))


# --- use ------------------------------------------------------------------------------

def _view() -> dict:
    """This process's view of the key table, read again once ``IDP_KEY_CACHE_SECONDS`` have passed."""
    view = current_app.extensions.get("idp_keys")
    now = time.monotonic()
    if view is None or view["until"] <= now:
        rows = db.session.execute(
            select(SigningKey.kid, SigningKey.alg, SigningKey.status, SigningKey.public_jwk,
                   SigningKey.private_key_encrypted).order_by(SigningKey.created_at)
        ).all()
        published = {"keys": [row.public_jwk for row in rows]}
        body = json.dumps(published, separators=(",", ":")).encode()
        view = {
            "until": now + current_app.config["IDP_KEY_CACHE_SECONDS"],
            "jwks": published,
            "body": body,
            "etag": hashlib.sha256(body).hexdigest()[:32],
            "key_set": KeySet.import_key_set(published) if rows else KeySet([]),  # before `idp init`: none
            "active": {row.alg: (row.kid, row.private_key_encrypted) for row in rows if row.status == "active"},
        }
        current_app.extensions["idp_keys"] = view  # one assignment: other threads see the old or the new view
    return view


def forget() -> None:
    """Read the key table again at the next use (after a change made by this process)."""
    current_app.extensions.pop("idp_keys", None)


def jwks() -> dict:
    """Public keys of every published key: next, active and retired."""
    return _view()["jwks"]


def jwks_document() -> tuple[bytes, str]:
    """The JWKS as served (bytes) and its ``ETag``."""
    view = _view()
    return view["body"], view["etag"]


def public_key_set() -> KeySet:
    return _view()["key_set"]


@lru_cache(maxsize=32)
def _private_key(kid: str, alg: str, blob: bytes, kek_id: int):
    pem = _decrypt(kid, blob)
    params = {"kid": kid, "alg": alg, "use": "sig"}
    return RSAKey.import_key(pem, parameters=params) if alg == "RS256" else ECKey.import_key(pem, parameters=params)


def has_active_key(alg: str) -> bool:
    """Whether a key signs for ``alg`` (this process's view, at most ``IDP_KEY_CACHE_SECONDS`` old)."""
    return alg in _view()["active"]


def signing_key(alg: str):
    """The active private key for ``alg``, as a joserfc key with its ``kid``.

    Looked up once per request and algorithm, so that the ``kid`` written in a
    token's header is the key that signs it even if a rotation commits meanwhile.
    """
    chosen = g.setdefault("idp_signing_keys", {})
    if alg not in chosen:
        chosen[alg] = _active_key(alg)
    return chosen[alg]


def _active_key(alg: str):
    active = _view()["active"].get(alg)
    if active is None:
        raise KeyStoreError(f"No active {alg} key: run `idp init` or `idp keys rotate`.")
    kid, blob = active
    return _private_key(kid, alg, blob, hash(_kek()))
