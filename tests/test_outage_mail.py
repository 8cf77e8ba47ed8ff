"""Issue 7 §2: a mail-server outage costs the person nothing, on the production server (`idp serve`) with several workers.

The provider's own SMTP server for each test (aiosmtpd), stopped and started
again on the same port while the server keeps running:

* security code (steps 1 and 3, case 3's quota): 503 with the French page and
  ``Retry-After``; no quota charged however often the person retries; the code
  received before stays valid and opens the login once the mail is back;
* e-mail validation (case 1): the same, the link received before stays valid;
* reset link (forgotten password): 503 before anything is counted; the link
  received before stays valid; and when the mail server answers the check but
  refuses the mail itself, the background job gives the quota back and keeps
  the older link as the live one.
"""

from __future__ import annotations

import re
import time

import pytest
import requests
from aiosmtpd.controller import Controller
from sqlalchemy import select

from conftest import Browser, csrf_token
from idp.login import policy
from idp.models import Limit, PasswordReset
from login_pages import Journey, fresh, page_text, quota_limit, step_of
from recovery_pages import ANSWER, RESET_SUBJECT, SENT, START, Recovery, split_link
from smtp import SMTPServer

MAIL_FAILED = "Le mail n'a pas pu être envoyé"
NOTHING_COUNTED = "Rien n'a été décompté"


@pytest.fixture
def own_smtp():
    """An SMTP server of this test only (so that stopping it touches no other test)."""
    holder = {"server": SMTPServer().start(), "running": True}
    yield holder
    if holder["running"]:
        holder["server"].stop()


@pytest.fixture
def settings(own_smtp):
    return {"MAIL_URL": own_smtp["server"].url, "CAPTCHA_TEST_ANSWER": ANSWER,
            "RATE_LIMIT_RECOVERY": "1000 per minute", "RATE_LIMIT_CAPTCHA": "1000 per minute"}


def stop(own_smtp) -> None:
    own_smtp["server"].stop()
    own_smtp["running"] = False


def restart(own_smtp) -> SMTPServer:
    port = own_smtp["server"].port
    own_smtp["server"] = SMTPServer(port=port).start()
    own_smtp["running"] = True
    return own_smtp["server"]


def assert_mail_failed_page(r: requests.Response) -> None:
    assert r.status_code == 503, (r.status_code, page_text(r.text)[:300])
    assert int(r.headers["Retry-After"]) > 0
    text = page_text(r.text)
    assert MAIL_FAILED in text and "Réessayez dans quelques minutes" in text
    assert '<html lang="fr">' in r.text


def test_security_code_outage_charges_no_quota_and_keeps_the_code_received(served, rp, make_user, app,
                                                                            own_smtp):
    user = make_user()
    journey = Journey(served.url, Browser(own_smtp["server"]), rp[0], rp[1])
    journey.up_to_code_entry(user)
    code = journey.code(user.email)
    charged = quota_limit(user.id).count

    stop(own_smtp)
    quota = app.config["IDP_CODE_QUOTA"]
    for _ in range(quota + 2):  # more than the quota: none of it counted
        r = journey.resend()
        assert_mail_failed_page(r)
        assert NOTHING_COUNTED in page_text(r.text)
    assert quota_limit(user.id).count == charged and quota_limit(user.id).locked_until is None

    # Another login of the account, step 1 during the outage: the same page, nothing counted.
    other = Journey(served.url, requests.Session(), rp[0], rp[1])
    other.start()
    other.password(user)
    assert_mail_failed_page(other.request_code())
    assert quota_limit(user.id).count == charged

    # The mail server is back (no restart of the provider): the code received before still works.
    restart(own_smtp)
    journey.get()
    journey.callback(journey.enter_code(code))


def test_email_validation_outage_keeps_the_link_received(served, rp, make_user, own_smtp):
    user = make_user(email_verified=False)
    journey = Journey(served.url, requests.Session(), rp[0], rp[1])
    journey.start()
    journey.password(user)
    r = journey.post({"action": "resend-validation"})
    assert r.status_code == 403
    link = re.search(r"(https?://[^\s#]+/compte/valider-email#[A-Za-z0-9_-]+)",
                     own_smtp["server"].wait_for(user.email).text_body()).group(1)
    charged = quota_limit(user.id).count

    stop(own_smtp)
    for _ in range(3):
        r = journey.post({"action": "resend-validation"})
        assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0
        assert "Le mail n'a pas pu être envoyé. Réessayez dans quelques minutes." in page_text(r.text)
    assert quota_limit(user.id).count == charged

    url, _, token = link.partition("#")
    page = journey.browser.get(url, timeout=10)
    done = journey.browser.post(url, data={"csrf_token": csrf_token(page.text), "token": token}, timeout=10)
    assert done.status_code == 200 and "Votre adresse mail est validée" in page_text(done.text)


def reset_quota_count(nir_typed: str) -> int:
    rows = fresh(select(Limit).where(Limit.kind == "reset-mail", Limit.key == policy.nir_key(nir_typed)))
    return rows[0].count if rows else 0


def test_reset_link_outage_charges_nothing_and_keeps_the_link_received(served, make_user, own_smtp):
    user = make_user()
    recovery = Recovery(served.url, Browser(own_smtp["server"]), own_smtp["server"])
    link = recovery.request_link(user)
    assert reset_quota_count(user.nir) == 1

    stop(own_smtp)
    for _ in range(5):  # more than the quota (3)
        recovery.start()
        r = recovery.ask(user.nir)
        assert_mail_failed_page(r)
        assert NOTHING_COUNTED in page_text(r.text)
    assert reset_quota_count(user.nir) == 1

    restart(own_smtp)
    assert recovery.set_password(link).status_code == 200


class _RefusingHandler:
    """A mail server that answers (greeting, NOOP) but refuses every recipient for now."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "451 4.3.0 Mail queue full, try again later"


def test_reset_mail_refused_after_the_check_gives_the_quota_back(served, make_user, own_smtp):
    user = make_user()
    recovery = Recovery(served.url, Browser(own_smtp["server"]), own_smtp["server"])
    link = recovery.request_link(user)
    [first] = fresh(select(PasswordReset).where(PasswordReset.user_id == user.id))

    port = own_smtp["server"].port
    stop(own_smtp)
    refusing = Controller(_RefusingHandler(), hostname="127.0.0.1", port=port)
    refusing.start()
    try:
        recovery.start()
        r = recovery.ask(user.nir)
        # The check passed: the page of a sent mail (the same for every NIR); the mail job then fails.
        assert r.posted.headers["Location"] == SENT and r.status_code == 200
        deadline = time.monotonic() + 10
        while reset_quota_count(user.nir) != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert reset_quota_count(user.nir) == 1  # given back
        rows = fresh(select(PasswordReset).where(PasswordReset.user_id == user.id))
        assert [row.id for row in rows] == [first.id] and rows[0].revoked_at is None
    finally:
        refusing.stop()
    restart(own_smtp)
    assert recovery.set_password(link).status_code == 200
