"""Issue 7 §4: the forgotten-password form does the same work whether the NIR and birth date match.

A matching NIR and birth date used to answer ~10 ms slower on PostgreSQL than a
non-matching one (the link was written in the request), which confirmed a birth
date in at most 31 tries. Now the request runs the same SQL statements on every
path (the quota reservation, the lookup); the link is written and mailed by the
background job. The test compares the statements each request executed — work
done, not seconds, so that it cannot flake — and :func:`median_ms` measures the
times for the note (``IDP_MEASURE_TIMING=1 pytest -s``; never asserted).
"""

from __future__ import annotations

import os
import random
import re
import statistics
import threading
import time

import pytest
from sqlalchemy import event

from conftest import Browser, csrf_token, make_nir
from idp.extensions import db
from recovery_pages import ANSWER, BORN, START, handle_of

OTHER_BIRTH_DATE = "13/05/1985"


@pytest.fixture
def settings():
    return {"CAPTCHA_TEST_ANSWER": ANSWER, "RATE_LIMIT_RECOVERY": "1000 per minute",
            "RATE_LIMIT_CAPTCHA": "1000 per minute"}


class StatementLog:
    """The SQL statements (text, without their parameters) run by the threads that serve requests."""

    def __init__(self, engine):
        self.engine = engine
        self.statements: list[str] = []
        self._lock = threading.Lock()
        self._recording = False

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        name = threading.current_thread().name
        if self._recording and name != "MainThread" and not name.startswith("idp-mail"):
            with self._lock:
                self.statements.append(re.sub(r"\s+", " ", statement).strip())

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._record)

    def during(self, action):
        self.statements = []
        self._recording = True
        try:
            result = action()
        finally:
            self._recording = False
        return result, list(self.statements)


def ask(url: str, mailbox, nir_typed: str, birth_date: str):
    """A whole step 2 in a new browser: the page, then « Recevoir le mail »; returns (browser, page, data)."""
    browser = Browser(mailbox)
    page = browser.get(url + START, timeout=10)
    data = {"nir": nir_typed, "birth_date": birth_date, "captcha_handle": handle_of(page.text), "captcha": ANSWER}
    return lambda: browser.submit(url + START, page.text, data, timeout=10)


def test_the_same_statements_whether_an_account_matches_or_not(live_server, make_user, mailbox, app):
    paths = {
        "NIR and birth date of an account": lambda: ask(live_server.url, mailbox, make_user().nir, BORN),
        "NIR of an account, another birth date": lambda: ask(live_server.url, mailbox, make_user().nir,
                                                             OTHER_BIRTH_DATE),
        "NIR without an account": lambda: ask(live_server.url, mailbox, make_nir(), BORN),
    }
    seen = {}
    with StatementLog(db.engine) as log:
        for name, prepare in paths.items():
            submit = prepare()
            response, statements = log.during(submit)
            assert response.status_code == 303, (name, response.status_code)
            seen[name] = statements
    reference = seen["NIR without an account"]
    assert reference, "no statement recorded: the listener saw nothing"
    assert any(s.startswith("INSERT INTO limits") for s in reference)  # the quota reservation
    for name, statements in seen.items():
        assert statements == reference, name
    if os.environ.get("IDP_MEASURE_TIMING"):  # for the note: IDP_MEASURE_TIMING=1 pytest -s this file
        print(f"\nforgotten-password step 2, median ms ({app.config['IDP_DATABASE_URL'].split(':')[0]}): "
              f"{median_ms(live_server.url, mailbox, make_user, rounds=30)}")


def median_ms(url: str, mailbox, make_user, rounds: int = 15) -> dict[str, float]:
    """Median time of « Recevoir le mail » per path, in ms (for the note; never asserted).

    The paths take turns in a random order, and each sample starts once the mail of
    the previous one has arrived, so that no background mail job runs during it.
    """
    samples: dict[str, list[float]] = {"match": [], "wrong birth date": [], "no account": []}
    for _ in range(rounds):
        names = list(samples)
        random.shuffle(names)
        for name in names:
            user = make_user()
            nir_typed, born = {"match": (user.nir, BORN), "wrong birth date": (user.nir, OTHER_BIRTH_DATE),
                               "no account": (make_nir(), BORN)}[name]
            submit = ask(url, mailbox, nir_typed, born)
            start = time.perf_counter()
            assert submit().status_code == 303
            samples[name].append((time.perf_counter() - start) * 1000)
            if name == "match":
                mailbox.wait_for(user.email)
    return {name: round(statistics.median(values), 2) for name, values in samples.items()}
