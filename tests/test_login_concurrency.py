"""Races over real HTTP: many requests at the same instant against the threaded served provider.

* 50 wrong passwords for one account, sent in parallel from 50 browsers, are
  counted no more than the rule allows (case 6: the third locks) and the NIR
  ends up locked;
* one security code submitted by 20 requests at once opens exactly one login.

Each request has its own ``requests.Session`` (its own connection); a barrier
releases them together.
"""

from __future__ import annotations

from datetime import timedelta
from collections import Counter

import requests
from sqlalchemy import select

from conftest import PASSWORD, csrf_token
from idp.models import AuthorizationCode, BrowserSession, Grant, utcnow
from login_pages import (
    outcome,
    CASE4_PASSWORD,
    NO_FLOW,
    code_limit,
    flows,
    fresh,
    near,
    page_text,
    password_limit,
    race,
    paris,
    set_cookie_headers,
    step_of,
)

CASE6 = "La connexion est bloquée pendant quelques minutes"
CASE5 = "Le code de sécurité a été saisi de façon incorrecte plusieurs fois de suite."


def test_fifty_parallel_wrong_passwords_are_counted_no_more_than_the_rule_and_lock(new_journey, user, app):
    nir_typed = user.nir
    posts = []
    for _ in range(50):
        j = new_journey()
        page = j.start()
        posts.append((j.browser, j.step_url, {"csrf_token": csrf_token(page.text), "nir": nir_typed,
                                              "password": "Mauvais-1234"}))
    responses = race(posts)

    statuses = Counter(outcome(r) for r in responses)
    limit = app.config["IDP_MAX_PASSWORD_FAILURES"]
    # The first two wrong passwords are case 4; the third locks; the 47 others find the lock and are not counted.
    assert statuses == {401: limit - 1, 429: 50 - (limit - 1)}, statuses
    assert all(CASE4_PASSWORD in page_text(r.text) for r in responses if outcome(r) == 401)
    row = password_limit(nir_typed)
    assert row.count == limit and near(row.locked_until, utcnow() + timedelta(minutes=5))
    locked_pages = [page_text(r.text) for r in responses if r.status_code == 429]
    assert all(CASE6 in t and paris(row.locked_until) in t for t in locked_pages)

    # Locked: even the right password is refused now.
    j = new_journey()
    j.start()
    r = j.password(user, password=PASSWORD)
    assert r.status_code == 429 and CASE6 in page_text(r.text)
    assert password_limit(nir_typed).locked_until == row.locked_until


def test_one_code_submitted_by_twenty_parallel_requests_succeeds_exactly_once(journey, user):
    page = journey.up_to_code_entry(user)
    code = journey.code(user.email)
    cookies = {c.name: c.value for c in journey.browser.cookies}
    data = {"csrf_token": csrf_token(page.text), "code": code}
    sessions = []
    for _ in range(20):
        s = requests.Session()
        s.cookies.update(cookies)
        sessions.append(s)
    responses = race([(s, journey.step_url, data) for s in sessions])

    to_rp = [r for r in responses if r.status_code == 303]
    assert len(to_rp) == 1, Counter(outcome(r) for r in responses)
    journey.callback(to_rp[0])
    others = [r for r in responses if r.status_code != 303]
    # The others: the flow is over or its code already used (400), or every attempt of the lock
    # period was taken by the parallel submissions (case 5, 429): a French page, never a 500.
    assert all(r.status_code in (400, 429) and '<html lang="fr">' in r.text for r in others), \
        Counter(r.status_code for r in others)
    assert all(NO_FLOW in page_text(r.text) or step_of(r) == "code" or CASE5 in page_text(r.text)
               for r in others)
    # None of them got past the code step (which would renew the flow identifier).
    assert all(set_cookie_headers(r, "idp_flow") == [] for r in others)
    assert len(fresh(select(AuthorizationCode))) == 1
    assert len(fresh(select(Grant))) == 1
    assert len(fresh(select(BrowserSession))) == 1
    assert flows()[0].completed_at is not None
    # The right code released the counter, and the lock the last attempt set.
    row = code_limit(user.id)
    assert row is None or (row.count == 0 and row.locked_until is None)
