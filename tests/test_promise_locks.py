"""Issue 7 §1: locks and quotas that cannot be raced, on the production server (`idp serve`) with 2 workers × 4 threads.

Every counted thing is reserved by one atomic statement before the work it
guards (:func:`idp.limits.reserve`). Each test fires its requests at the same
instant, each on its own connection, against the real server (several
processes), on SQLite and on PostgreSQL, and counts the work really done: the
passwords verified and the codes compared (counted by the served app, see
``tests/served_app.py``), the mails received by the SMTP server.

* case 6: at most ``MAX_PASSWORD_FAILURES`` passwords verified per lock period,
  and the right password is accepted only when it was one of them;
* case 5: at most ``MAX_CODE_FAILURES`` codes compared;
* case 3: at most ``CODE_QUOTA`` security codes mailed, validation mails included
  (case 1's « renvoyer le mail de validation » counts in the same quota);
* forgotten password, case 2: at most ``RESET_MAIL_QUOTA`` reset mails per NIR.
"""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest
import requests

from conftest import PASSWORD, Browser, csrf_token
from login_pages import Journey, outcome, page_text, race, step_of
from recovery_pages import ANSWER, BLOCKED, BORN, SENT, START, handle_of

N = 40
WRONG = "Mauvais-1234"


def journeys(server, rp, n: int) -> list[tuple[Journey, requests.Response]]:
    """``n`` logins started in ``n`` browsers: each at its password page."""
    out = []
    for _ in range(n):
        journey = Journey(server.url, requests.Session(), rp[0], rp[1])
        out.append((journey, journey.start()))
    return out


def clones(browser: requests.Session, n: int) -> list[requests.Session]:
    """``n`` connections of the same browser (its cookies): one person's tabs, or a script replaying them."""
    out = []
    for _ in range(n):
        session = requests.Session()
        session.cookies.update(browser.cookies.get_dict())
        out.append(session)
    return out


@pytest.mark.parametrize("round_", range(3))
def test_case6_parallel_passwords_verify_no_more_than_the_rule(served, rp, make_user, app, round_):
    """N passwords for one NIR at once, the right one at a random place among N - 1 wrong ones."""
    user = make_user()
    limit = app.config["IDP_MAX_PASSWORD_FAILURES"]
    right_at = random.randrange(N)
    started = journeys(served, rp, N)
    served.reset_checks()
    posts = [(j.browser, j.step_url, {"csrf_token": csrf_token(page.text), "nir": user.nir,
                                      "password": PASSWORD if i == right_at else WRONG})
             for i, (j, page) in enumerate(started)]
    responses = race(posts)

    statuses = Counter(outcome(r) for r in responses)
    assert set(statuses) <= {303, 401, 429}, statuses  # never a 500
    accepted = [i for i, r in enumerate(responses) if r.status_code == 303]
    verified = served.checks("password")
    assert accepted in ([], [right_at])
    if accepted:
        # The right password was one of the attempts of its lock period; its success starts a new
        # period, in which at most `limit` more are verified.
        assert verified <= 2 * limit, verified
    else:
        assert verified <= limit, verified
        assert statuses[401] <= limit - 1
        # The allowance is used up: the right password, sent now, is refused like any other, unverified.
        journey = Journey(served.url, requests.Session(), rp[0], rp[1])
        journey.start()
        r = journey.password(user)
        assert r.status_code == 429 and "bloquée" in page_text(r.text)
        assert served.checks("password") == verified


def test_case6_fifty_parallel_wrong_passwords_verify_exactly_the_rule(served, rp, make_user, app):
    user = make_user()
    limit = app.config["IDP_MAX_PASSWORD_FAILURES"]
    started = journeys(served, rp, 50)
    served.reset_checks()
    responses = race([(j.browser, j.step_url, {"csrf_token": csrf_token(page.text), "nir": user.nir,
                                                "password": WRONG}) for j, page in started])
    assert Counter(outcome(r) for r in responses) == {401: limit - 1, 429: 50 - (limit - 1)}
    assert served.checks("password") == limit


@pytest.mark.parametrize("round_", range(2))
def test_case5_parallel_codes_are_compared_no_more_than_the_rule(served, rp, make_user, app, mailbox, round_):
    """N codes submitted at once in one login, the right one at a random place."""
    user = make_user()
    limit = app.config["IDP_MAX_CODE_FAILURES"]
    journey = Journey(served.url, Browser(mailbox), rp[0], rp[1])
    page = journey.up_to_code_entry(user)
    code = journey.code(user.email)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    right_at = random.randrange(30)
    sessions = clones(journey.browser, 30)
    served.reset_checks()
    responses = race([(s, journey.step_url, {"csrf_token": csrf_token(page.text),
                                             "code": code if i == right_at else wrong})
                      for i, s in enumerate(sessions)])

    statuses = Counter(outcome(r) for r in responses)
    assert set(statuses) <= {303, 400, 401, 429}, statuses
    assert served.checks("code") <= limit
    accepted = [i for i, r in enumerate(responses) if r.status_code == 303 and "/connexion" not in r.headers["Location"]]
    assert accepted in ([], [right_at])
    assert statuses[401] <= limit - 1


def test_case3_parallel_code_requests_send_no_more_than_the_quota(served, rp, make_user, app, mailbox):
    user = make_user()
    quota = app.config["IDP_CODE_QUOTA"]
    journey = Journey(served.url, Browser(mailbox), rp[0], rp[1])
    page = journey.up_to_code_entry(user)  # the first code: one of the quota
    sessions = clones(journey.browser, 30)
    responses = race([(s, journey.step_url, {"csrf_token": csrf_token(page.text), "action": "resend"})
                      for s in sessions])
    statuses = Counter(outcome(r) for r in responses)
    assert set(statuses) <= {200, 429}, statuses
    assert statuses[200] == quota - 1
    time.sleep(0.5)
    assert len(mailbox.to(user.email)) == quota


def test_case1_parallel_validation_mails_stay_within_the_code_quota(served, rp, make_user, app, mailbox):
    user = make_user(email_verified=False)
    quota = app.config["IDP_CODE_QUOTA"]
    journey = Journey(served.url, requests.Session(), rp[0], rp[1])
    journey.start()
    page = journey.password(user)
    assert "Votre adresse mail doit être validée" in page_text(page.text)
    sessions = clones(journey.browser, 30)
    responses = race([(s, journey.step_url, {"csrf_token": csrf_token(page.text), "action": "resend-validation"})
                      for s in sessions])
    statuses = Counter(outcome(r) for r in responses)
    assert statuses == {403: quota, 429: 30 - quota}, statuses
    time.sleep(0.5)
    assert len(mailbox.to(user.email)) == quota


class TestResetMailQuota:
    @pytest.fixture
    def settings(self):
        # The per-IP limits (Flask-Limiter) would stop this one test client first: the rule tested
        # here is the per-NIR quota in the database.
        return {"CAPTCHA_TEST_ANSWER": ANSWER, "RATE_LIMIT_RECOVERY": "1000 per minute",
                "RATE_LIMIT_CAPTCHA": "1000 per minute"}

    @pytest.mark.parametrize("matching", [True, False], ids=["account", "no-account"])
    def test_case2_parallel_requests_mail_no_more_than_the_quota(self, served, make_user, app, mailbox, matching):
        user = make_user()
        quota = app.config["IDP_RESET_MAIL_QUOTA"]
        posts = []
        for _ in range(30):
            browser = requests.Session()
            page = browser.get(served.url + START, timeout=10)
            posts.append((browser, served.url + START, {
                "csrf_token": csrf_token(page.text), "captcha_handle": handle_of(page.text), "captcha": ANSWER,
                "nir": user.nir, "birth_date": BORN if matching else "13/05/1985"}))
        responses = race(posts)
        # Account or not: the same answers, the same count (each POST answers 303 to the page of its outcome).
        outcomes = Counter((r.status_code, r.headers.get("Location")) for r in responses)
        assert outcomes == {(303, SENT): quota, (303, BLOCKED): 30 - quota}, outcomes
        for (browser, _, _), r in zip(posts, responses):
            if r.headers.get("Location") == BLOCKED:
                blocked = browser.get(served.url + BLOCKED, timeout=10)
                assert blocked.status_code == 429 and "Trop de demandes" in page_text(blocked.text)
        if matching:
            mailbox.wait_for(user.email, after=quota - 1)
        time.sleep(0.5)  # the mails go from a background pool: let any extra one arrive
        assert len(mailbox.to(user.email)) == (quota if matching else 0)
