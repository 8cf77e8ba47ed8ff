"""Issue 12: single use under races, on the provider served as in production (2 workers × 4 threads).

One app code, or one recovery code, submitted at the same instant from N logins of the
same person (a code seen over a shoulder and replayed in parallel): exactly one login
reaches the relying party. The rule is one conditional UPDATE in each case
(``last_used_step < :step``, ``used_at IS NULL``), run after an attempt of case 5's
counter was reserved by its own atomic statement.
"""

from __future__ import annotations

from collections import Counter

import requests
from sqlalchemy import select, update

from conftest import csrf_token
from idp.models import AuditEvent, AuthorizationCode, RecoveryCode, TotpCredential
from login_pages import Journey, fresh, move, race
from mfa_pages import app_code, enrol, settle, up_to_app_code, up_to_recovery_code

N = 10


def _logins(served, rp, user, up_to) -> list[Journey]:
    out = []
    for _ in range(N):
        journey = Journey(served.url, requests.Session(), rp[0], rp[1])
        up_to(journey, user)
        out.append(journey)
    return out


def _logins_succeeded(user_id: int) -> list[AuditEvent]:
    return fresh(select(AuditEvent).where(AuditEvent.event == "login_succeeded", AuditEvent.user_id == user_id))


def test_one_app_code_submitted_by_parallel_logins_opens_exactly_one(served, rp, user):
    secret, _ = enrol(user)
    journeys = _logins(served, rp, user, up_to_app_code)
    settle()
    move(update(TotpCredential).values(last_used_step=0))  # the code of this very step, not used yet
    code = app_code(secret)
    responses = race([(j.browser, j.step_url, {"csrf_token": csrf_token(j.page.text), "code": code})
                      for j in journeys])
    statuses = Counter(r.status_code for r in responses)
    to_rp = [r for r in responses if r.status_code == 303]
    assert len(to_rp) == 1, statuses
    # The others: the code already used (401) or every attempt of the period taken (case 5, 429). Never a 500.
    assert set(statuses) <= {303, 401, 429}, statuses
    assert len(fresh(select(AuthorizationCode))) == 1
    assert len(_logins_succeeded(user.id)) == 1
    [row] = fresh(select(TotpCredential))
    assert row.last_used_step > 0


def test_one_recovery_code_submitted_by_parallel_logins_serves_exactly_once(served, rp, user):
    _, codes = enrol(user)
    journeys = _logins(served, rp, user, up_to_recovery_code)
    responses = race([(j.browser, j.step_url, {"csrf_token": csrf_token(j.page.text), "code": codes[0]})
                      for j in journeys])
    statuses = Counter(r.status_code for r in responses)
    passed = [r for r in responses if r.status_code == 303]
    assert len(passed) == 1, statuses              # on to « Vous avez utilisé un code de secours »
    assert set(statuses) <= {303, 401, 429}, statuses
    used = [r for r in fresh(select(RecoveryCode)) if r.used_at is not None]
    assert len(used) == 1
    recorded = fresh(select(AuditEvent).where(AuditEvent.event == "recovery_code_used"))
    assert len(recorded) == 1 and recorded[0].detail == {"remaining": 9}
