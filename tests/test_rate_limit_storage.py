"""Per-IP limits across workers: with Redis storage, two workers share one count.

Runs with ``memory://`` always (each worker counts alone: why production needs
Redis) and with Redis when ``IDP_TEST_REDIS_URL`` is set (``.ci/run`` sets it
when Redis answers on 127.0.0.1:6379).
"""

from __future__ import annotations

import os

import pytest

from idp import create_app

STORAGES = ["memory://"] + ([os.environ["IDP_TEST_REDIS_URL"]] if os.environ.get("IDP_TEST_REDIS_URL") else [])


@pytest.mark.parametrize("storage", STORAGES, ids=lambda s: s.split(":")[0])
def test_two_workers_and_the_captcha_limit(app, storage, tmp_path):
    if storage.startswith("redis"):
        import redis

        redis.Redis.from_url(storage).flushdb()
    settings = {
        "DATABASE_URL": app.config["IDP_DATABASE_URL"], "SECRET_KEY": app.config["IDP_SECRET_KEY"],
        "KEY_SECRET": app.config["IDP_KEY_SECRET"], "TESTING": True, "MAIL_OUTBOX_DIR": str(tmp_path),
        "RATE_LIMIT_STORAGE_URI": storage, "RATE_LIMIT_CAPTCHA": "3 per minute",
    }
    workers = [create_app(settings).test_client(), create_app(settings).test_client()]
    statuses = [workers[i % 2].get("/mot-de-passe-oublie").status_code for i in range(4)]
    if storage.startswith("redis"):
        assert statuses == [200, 200, 200, 429]  # one count for both workers
    else:
        assert statuses == [200, 200, 200, 200]  # each worker counts alone (2 each)
        assert [workers[0].get("/mot-de-passe-oublie").status_code for _ in range(2)] == [200, 429]
