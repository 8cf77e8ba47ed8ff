"""Redis down: the forgotten-password pages keep answering, the per-NIR quota holds, it is logged (issue 7, §2).

The per-IP limits of the forgotten-password journey live in Redis
(``IDP_RATE_LIMIT_STORAGE_URI=redis://…``) when several workers serve; the quota
of reset mails per NIR (case 2) lives in the database. On the real server
(``idp serve``: granian, 2 workers × 4 threads) with a redis-server of the test's own on a free
port:

* while Redis answers, the per-IP limit is shared by the workers and enforced;
* Redis frozen (SIGSTOP: connections open, no answer): a page answers within
  the Redis timeout, not never;
* Redis killed (SIGKILL): the pages and the CAPTCHA image answer 200 beyond the
  per-IP limit, the per-NIR quota still blocks the request one past it, and
  each request that skipped its limit is one WARNING line, without a traceback;
* Redis back (same port): the limits apply again, without a restart.

Anything a worker writes to stderr, a library's traceback included, is in the
server's log the test reads.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time

import pytest
import redis
import requests

from conftest import free_port
from idp.login import policy
from idp.recovery.ratelimit import REDIS_TIMEOUT
from login_pages import limit_row, page_text
from recovery_pages import ANSWER, SENT, START, Recovery, handle_of

CAPTCHA_LIMIT = 4  # per minute and per IP: pages and images of the CAPTCHA
LOG_LINE = "WARNING in ratelimit: Rate limit storage unavailable ("


class RedisServer:
    """A redis-server of the test's own (never the one on 6379), without persistence."""

    def __init__(self, folder):
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=1).ping():
                    return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(5)
        with pytest.raises(OSError):  # nothing listens on its port any more
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()

    def keys(self) -> list[bytes]:
        return list(redis.Redis.from_url(self.url, socket_timeout=1).scan_iter("*"))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(5)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def settings(redis_server):
    return {"RATE_LIMIT_STORAGE_URI": redis_server.url, "RATE_LIMIT_CAPTCHA": f"{CAPTCHA_LIMIT} per minute",
            "CAPTCHA_TEST_ANSWER": ANSWER}


def app_log_lines(server) -> list[str]:
    return server.app_lines()


def captcha_page(url: str, session: requests.Session) -> tuple[requests.Response, requests.Response]:
    """The forgotten-password page and its CAPTCHA image: two requests under the per-IP CAPTCHA limit."""
    page = session.get(url + START, timeout=30)
    if page.status_code != 200:
        return page, page
    image = session.get(f"{url}{START}/captcha/{handle_of(page.text)}/image.png", timeout=30)
    return page, image


def limits_enforced(url: str, new_browser) -> bool:
    """The per-IP CAPTCHA limit (counted per endpoint) lets ``CAPTCHA_LIMIT`` pages and images through, then 429."""
    for _ in range(CAPTCHA_LIMIT):
        page, image = captcha_page(url, new_browser())
        assert (page.status_code, image.status_code) == (200, 200), (page.status_code, image.status_code)
        assert page.headers["X-RateLimit-Limit"] == str(CAPTCHA_LIMIT)
    return requests.get(url + START, timeout=30).status_code == 429


def test_redis_down_the_pages_answer_the_nir_quota_holds_and_each_request_is_one_log_line(
        app, redis_server, make_served, new_browser, mailbox, make_user):
    server = make_served()
    user = make_user()
    nir_typed, email = user.nir, user.email
    quota = app.config["IDP_RESET_MAIL_QUOTA"]
    url = server.url
    workers = server.workers()

    # Redis up: one count for both workers, enforced.
    assert limits_enforced(url, new_browser)
    assert redis_server.keys()
    assert app_log_lines(server) == []

    # Redis frozen: connections are accepted, nothing answers. The page does not wait for it.
    redis_server.signal(signal.SIGSTOP)
    started = time.monotonic()
    frozen = requests.get(url + START, timeout=30)
    waited = time.monotonic() - started
    redis_server.signal(signal.SIGCONT)
    assert frozen.status_code == 200  # over the limit, but the limit could not be checked
    assert waited < 3 * REDIS_TIMEOUT + 2, waited
    frozen_lines = app_log_lines(server)
    assert len(frozen_lines) == 1 and LOG_LINE in frozen_lines[0] and "redis.TimeoutError" in frozen_lines[0], \
        frozen_lines

    # Redis killed.
    redis_server.kill()
    skipped = 0  # requests made under a per-IP limit, which therefore had to skip it
    for _ in range(CAPTCHA_LIMIT + 2):  # beyond the per-IP limit: nothing counts it now
        page, image = captcha_page(url, new_browser())
        assert page.status_code == 200, page.status_code
        assert image.status_code == 200 and image.headers["Content-Type"] == "image/png", image.status_code
        assert "X-RateLimit-Limit" not in page.headers
        skipped += 2
    assert requests.get(url + START + "/aide", timeout=30).status_code == 200  # not limited: nothing logged

    # The per-NIR quota (case 2, in the database) still holds: the request one past it is refused.
    answers = []
    recovery = Recovery(url, new_browser(), mailbox)
    for _ in range(quota + 2):
        recovery.start()
        answers.append(recovery.ask(nir_typed))
        skipped += 2  # the page and the POST
    assert [r.status_code for r in answers] == [200] * quota + [429, 429], [r.status_code for r in answers]
    assert all(r.posted.headers["Location"] == SENT for r in answers[:quota])
    assert all("Trop de demandes de renouvellement" in page_text(r.text) for r in answers[quota:])
    row = limit_row("reset-mail", policy.nir_key(nir_typed))
    assert row is not None and row.locked_until is not None
    deadline = time.monotonic() + 10
    while len(mailbox.to(email)) < quota and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert len(mailbox.to(email)) == quota  # one mail per allowed request, none past the quota

    # One WARNING line per request that skipped its limit, no traceback, no 5xx.
    lines = app_log_lines(server)[len(frozen_lines):]
    assert all(LOG_LINE in line for line in lines), [line for line in lines if LOG_LINE not in line][:5]
    assert len(lines) == skipped, (len(lines), skipped)
    assert all("redis.ConnectionError" in line for line in lines), lines[0]
    assert "Traceback" not in server.logs()
    statuses = server.statuses()
    assert not [s for s in statuses if s >= 500], statuses

    # Redis back on its port (empty): the limits apply again, in the same workers.
    redis_server.start()
    assert limits_enforced(url, new_browser)
    assert len(app_log_lines(server)) == len(frozen_lines) + skipped
    assert sorted(server.workers()) == sorted(workers)

