"""Argon2 runs on the worker's own hashing threads (IDP_ARGON2_CONCURRENCY), never on more at once.

glibc keeps the 19 MiB an Argon2id computation frees in the arena of the thread that
freed it: running every computation on a fixed set of threads bounds a worker's memory
(see idp/crypto.py), whatever its number of request threads.
"""

from __future__ import annotations

import threading
import time

import pytest
from argon2 import PasswordHasher

from idp import crypto


@pytest.mark.parametrize("concurrency", [1, 2])
def test_argon2_runs_on_at_most_the_configured_hashing_threads(app, monkeypatch, concurrency):
    app.config["IDP_ARGON2_CONCURRENCY"] = concurrency
    stored = crypto.hash_password("Motdepasse-2024")
    lock = threading.Lock()
    seen = {"running": 0, "peak": 0, "threads": set()}
    real_verify = PasswordHasher.verify

    def watched(self, *args, **kwargs):
        with lock:
            seen["running"] += 1
            seen["peak"] = max(seen["peak"], seen["running"])
            seen["threads"].add(threading.current_thread().name)
        try:
            time.sleep(0.02)
            return real_verify(self, *args, **kwargs)
        finally:
            with lock:
                seen["running"] -= 1

    monkeypatch.setattr(PasswordHasher, "verify", watched)
    results = []

    def request_thread():
        with app.app_context():
            results.append(crypto.verify_password(stored, "Motdepasse-2024"))
            results.append(crypto.verify_password(stored, "faux"))

    threads = [threading.Thread(target=request_thread) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [False] * 6 + [True] * 6
    assert 1 <= seen["peak"] <= concurrency
    assert all(name.startswith("argon2") for name in seen["threads"])
    assert len(seen["threads"]) <= concurrency
