"""Issue 12: « Nouvelle connexion à votre compte ameli », and the 3646 agents' ``idp users mfa reset``.

The mail goes when a login completes in a browser that was not trusted before (date
and time in Paris, partner site, browser from the User-Agent, « Ce n'était pas
vous ? »), never for a trusted browser, never with ``IDP_NEW_LOGIN_MAIL`` off; a mail
that cannot be sent never fails the login (logged, audited). Read from the SMTP server.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from conftest import free_port
from idp.mfa import notices
from idp.models import AuditEvent, RecoveryCode, TotpCredential, utcnow
from login_pages import fresh, paris, step_of
from mfa_pages import enrol, next_code, up_to_app_code

FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SUBJECT = "Nouvelle connexion à votre compte ameli"


def events(name: str) -> list[AuditEvent]:
    return fresh(select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id))


@pytest.fixture
def settings():
    return {"NEW_LOGIN_MAIL": True}


def test_a_login_in_a_new_browser_is_told_by_mail_with_when_where_and_what_to_do(journey, user, mailbox, rp):
    journey.browser.headers["User-Agent"] = FIREFOX_LINUX
    journey.up_to_code_entry(user)
    before = utcnow()
    r = journey.enter_code(journey.code(user.email), follow=False)
    journey.callback(r)
    mail = mailbox.wait_for(user.email, after=1)
    assert mail["Subject"] == SUBJECT
    text = mail.text_body()
    assert "Bonjour Jeanne Martin" in text
    assert paris(before) in text or paris(utcnow()) in text          # date and time, Europe/Paris
    assert f"« {rp[0].name} »" in text                                # the partner site
    assert "Navigateur : Firefox sous Linux" in text
    assert "Ce n'était pas vous ?" in text
    assert f"{journey.url}/mot-de-passe-oublie" in text and f"{journey.url}/mon-compte/securite" in text
    assert f'href="{journey.url}/mon-compte/securite"' in mail.html_body()


def test_never_for_a_trusted_browser(journey, user, mailbox):
    journey.up_to_code_entry(user)
    journey.callback(journey.enter_code(journey.code(user.email), remember=True, follow=False))
    assert [m["Subject"] for m in mailbox.to(user.email)][-1] == SUBJECT  # not trusted *before* this login
    sent = len(mailbox.to(user.email))
    journey.start(prompt="login")
    r = journey.password(user, follow=False)
    journey.callback(r)
    assert len(mailbox.to(user.email)) == sent


def test_with_the_app_too_and_off_when_the_setting_says_so(journey, user, mailbox, app):
    secret, _ = enrol(user)
    up_to_app_code(journey, user)
    journey.callback(journey.post({"code": next_code(secret)}, follow=False))
    assert [m["Subject"] for m in mailbox.to(user.email)] == [SUBJECT]

    app.config["IDP_NEW_LOGIN_MAIL"] = False  # the in-process server reads the same config
    journey.start(prompt="login")
    journey.password(user)
    journey.post({"factor": "mail"})
    journey.request_code()
    journey.callback(journey.enter_code(journey.code(user.email), follow=False))
    assert [m["Subject"] for m in mailbox.to(user.email)][-1] != SUBJECT


def test_a_mail_that_cannot_be_sent_does_not_fail_the_login(journey, user, app, caplog):
    secret, _ = enrol(user)
    app.config["IDP_MAIL_URL"] = f"smtp://127.0.0.1:{free_port()}?timeout=2"  # nobody listens there
    up_to_app_code(journey, user)
    r = journey.post({"code": next_code(secret)}, follow=False)
    claims = journey.id_token_claims(r)
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    [failed] = events("notification_failed")
    assert failed.user_id == user.id and failed.detail == {"kind": "new-login"}
    assert any("Notification mail new-login could not be sent" in m for m in caplog.messages)
    assert not any(user.email in m for m in caplog.messages)


@pytest.mark.parametrize("agent, expected", [
    (FIREFOX_LINUX, ("Firefox", "Linux")),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Safari/537.36 Edg/131.0.0.0", ("Edge", "Windows")),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.5 Mobile/15E148 Safari/604.1", ("Safari", "iOS")),
    ("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36",
     ("Chrome", "Android")),
    ("", (None, None)),
])
def test_the_browser_is_named_from_the_user_agent(agent, expected):
    assert notices.browser_of(agent) == expected


# --- idp users mfa reset ---------------------------------------------------------------------------

@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args):
        result = runner.invoke(args=[str(a) for a in args])
        assert "Traceback" not in result.output, result.output
        return result

    return invoke


def test_the_agent_command_removes_the_app_and_the_codes_and_is_audited(cli, user, journey):
    enrol(user)
    r = cli("users", "mfa", "reset", user.nir)
    assert r.exit_code == 0, r.output
    assert "Removed: the authenticator app, 10 recovery code(s)." in r.output
    assert fresh(select(TotpCredential)) == [] and fresh(select(RecoveryCode)) == []
    [reset] = events("mfa_reset")
    assert reset.user_id == user.id and reset.detail == {"by": "cli", "app": True, "recovery_codes": 10}
    assert events("mfa_app_removed")[0].detail == {"by": "cli"}
    # The person is back to the seed's journey: the code by mail.
    journey.start()
    assert step_of(journey.password(user)) == "code-request"

    again = cli("users", "mfa", "reset", user.nir)
    assert again.exit_code == 0 and "Nothing to remove" in again.output
    bad = cli("users", "mfa", "reset", "123")
    assert bad.exit_code != 0 and "NIR must have 15 characters" in bad.output
    unknown = cli("users", "mfa", "reset", "185057800608491")
    assert unknown.exit_code != 0 and "No account with this NIR." in unknown.output
