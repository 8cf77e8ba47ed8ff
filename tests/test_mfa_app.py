"""Issue 12: the authenticator app and the recovery codes, at enrolment (service API) and at login.

A person with an app enrolled chooses at step 1 between « Recevoir un code par mail »
and « Utiliser mon application d'authentification »; from the app's page, « Utiliser
un code de secours ». Wrong app codes and wrong recovery codes count toward case 5's
lock like wrong mail codes; ``amr`` is ``pwd otp mfa`` and the audit trail's
``login_succeeded`` says the method. A person without an app sees the seed's journey.
"""

from __future__ import annotations

import re

from sqlalchemy import select, update

from idp.extensions import db
from idp.mfa import recovery_codes, totp
from idp.models import AuditEvent, RecoveryCode, TotpCredential
from login_pages import alert_text, code_limit, fresh, move, page_text, step_of
from mfa_pages import app_code, enrol, next_code, settle, up_to_app_code, up_to_recovery_code

CASE5 = "Le code de sécurité a été saisi de façon incorrecte plusieurs fois de suite."
WRONG_APP = "Le code saisi est incorrect ou a déjà servi."
WRONG_RECOVERY = "Ce code de secours est incorrect ou a déjà été utilisé."


def events(name: str, user_id: int | None = None) -> list[AuditEvent]:
    rows = fresh(select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id))
    return [r for r in rows if user_id is None or r.user_id == user_id]


# --- Enrolment: the service API the security space calls ------------------------------------------

def test_enrolment_shows_a_qr_code_and_the_key_and_is_pending_until_a_first_right_code(user):
    settle()
    enrolment = totp.begin_enrolment(user)
    db.session.commit()
    assert re.fullmatch(r"[A-Z2-7]{32}", enrolment.secret_b32)                      # 160 bits
    assert enrolment.secret_groups.split() == re.findall(".{4}", enrolment.secret_b32)
    assert enrolment.otpauth_uri.startswith("otpauth://totp/ameli:")
    assert "issuer=ameli" in enrolment.otpauth_uri and f"secret={enrolment.secret_b32}" in enrolment.otpauth_uri
    assert enrolment.qr_svg.startswith("<svg") and "<path" in enrolment.qr_svg        # made in the process
    # Stored encrypted, never in clear; pending: not usable yet.
    [row] = fresh(select(TotpCredential))
    assert row.secret_encrypted is None and enrolment.secret_b32.encode() not in bytes(row.pending_secret_encrypted)
    assert not totp.is_enrolled(user)
    assert not totp.verify(user, app_code(enrolment.secret_b32))

    assert not totp.confirm_enrolment(user, "000000" if app_code(enrolment.secret_b32) != "000000" else "111111")
    assert not totp.is_enrolled(user)
    assert totp.confirm_enrolment(user, app_code(enrolment.secret_b32))
    db.session.commit()
    assert totp.is_enrolled(user)
    [row] = fresh(select(TotpCredential))
    assert row.pending_secret_encrypted is None and row.confirmed_at is not None
    assert enrolment.secret_b32.encode() not in bytes(row.secret_encrypted)
    assert len(events("mfa_app_enrolled", user.id)) == 1
    # The confirming code is used: it does not log in afterwards.
    assert not totp.verify(user, app_code(enrolment.secret_b32))


def test_a_new_enrolment_leaves_the_app_in_use_active_until_it_is_confirmed(user):
    secret, _ = enrol(user)
    totp.begin_enrolment(user)
    db.session.commit()
    assert totp.is_enrolled(user)
    assert totp.verify(user, next_code(secret))   # the old app still works
    db.session.commit()


def test_recovery_codes_are_ten_hashed_and_regenerating_replaces_them(user):
    first = recovery_codes.generate(user)
    db.session.commit()
    assert len(first) == 10 and len(set(first)) == 10
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", c) for c in first)
    rows = fresh(select(RecoveryCode))
    assert len(rows) == 10 and all(re.fullmatch(r"[0-9a-f]{64}", r.code_hash) for r in rows)
    assert not any(c.replace("-", "") in r.code_hash.upper() for c in first for r in rows)
    second = recovery_codes.generate(user)
    db.session.commit()
    assert not set(first) & set(second) and len(fresh(select(RecoveryCode))) == 10
    assert not recovery_codes.consume(user, first[0])
    # Case, spaces and dashes do not matter; a code serves once.
    assert recovery_codes.consume(user, " " + second[0].lower().replace("-", " ") + " ")
    assert not recovery_codes.consume(user, second[0])
    db.session.commit()
    assert recovery_codes.remaining(user) == 9


# --- At login --------------------------------------------------------------------------------------

def test_without_an_app_the_journey_is_the_seeds(journey, user):
    page = journey.start()
    page = journey.password(user)
    assert step_of(page) == "code-request"
    assert "application d'authentification" not in page.text


def test_login_with_the_app_reaches_the_relying_party_with_mfa_and_no_mail(journey, user, mailbox):
    secret, _ = enrol(user)
    page = journey.start()
    page = journey.password(user)
    assert step_of(page) == "factor-choice" and page.status_code == 200
    text = page_text(page.text)
    assert "Étape 2 sur 3" in text
    assert ">Utiliser mon application d'authentification</button>" in page.text
    assert ">Recevoir un code par mail</button>" in page.text
    page = journey.post({"factor": "app"})
    assert step_of(page) == "app-code" and "Étape 3 sur 3" in page_text(page.text)
    assert re.search(r'<label[^>]*for="code"[^>]*>Code de l&#39;application</label>|'
                     r'<label[^>]*for="code"[^>]*>Code de l\'application</label>', page.text)
    assert "utiliser un code de secours" in page_text(page.text)
    r = journey.post({"code": next_code(secret)}, follow=False)
    claims = journey.id_token_claims(r)
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "urn:idp:acr:mfa"
    assert mailbox.to(user.email) == []
    [done] = events("login_succeeded", user.id)
    assert done.detail["method"] == "app-code" and done.detail["amr"] == ["pwd", "otp", "mfa"]


def test_the_mail_choice_goes_on_to_the_seeds_steps_1_to_3(journey, user):
    enrol(user)
    journey.start()
    journey.password(user)
    page = journey.post({"factor": "mail"})
    assert step_of(page) == "code-request"
    page = journey.request_code()
    assert step_of(page) == "code"
    r = journey.enter_code(journey.code(user.email), follow=False)
    assert journey.id_token_claims(r)["amr"] == ["pwd", "otp", "mfa"]
    assert events("login_succeeded", user.id)[0].detail["method"] == "mail-code"


def test_an_app_code_is_accepted_once_even_in_another_login(new_journey, user):
    secret, _ = enrol(user)
    code = next_code(secret)
    first = new_journey()
    up_to_app_code(first, user)
    first.callback(first.post({"code": code}, follow=False))

    second = new_journey()
    up_to_app_code(second, user)
    r = second.post({"code": code})
    assert r.status_code == 401 and step_of(r) == "app-code"
    assert WRONG_APP in alert_text(r.text) and r.text.count("<title>Erreur : ") == 1
    assert events("login_failed", user.id)[-1].case == 4


def test_one_step_of_drift_is_accepted_two_are_not(new_journey, user):
    secret, _ = enrol(user)
    settle(6)
    move(update(TotpCredential).values(last_used_step=0))  # nothing used yet
    late = new_journey()
    up_to_app_code(late, user)
    assert late.post({"code": app_code(secret, 2)}).status_code == 401      # two steps ahead: refused
    assert late.post({"code": app_code(secret, -2)}).status_code == 401     # two steps behind: refused
    late.callback(late.post({"code": app_code(secret, -1)}, follow=False))  # the clock 30 s behind
    ahead = new_journey()
    up_to_app_code(ahead, user)
    ahead.callback(ahead.post({"code": app_code(secret, 1)}, follow=False))  # the clock 30 s ahead


def test_wrong_app_and_recovery_codes_lock_like_case_5_with_the_mail_codes(new_journey, user, app):
    secret, codes = enrol(user)
    journey = new_journey()
    up_to_app_code(journey, user)
    wrong = "000000" if next_code(secret) != "000000" else "111111"
    r = journey.post({"code": wrong})
    assert r.status_code == 401 and WRONG_APP in alert_text(r.text)
    assert code_limit(user.id).count == 1
    # A wrong recovery code counts on the same counter...
    page = journey.post({"action": "recovery"})
    assert step_of(page) == "recovery-code"
    r = journey.post({"code": "ABCD-EFGH-JKMN"})
    assert r.status_code == 401 and WRONG_RECOVERY in alert_text(r.text)
    assert code_limit(user.id).count == 2
    # ...and the third wrong code of any kind locks the account (case 5).
    journey.post({"action": "app"})
    r = journey.post({"code": wrong})
    assert r.status_code == 429 and CASE5 in page_text(r.text)
    row = code_limit(user.id)
    assert row.locked_until is not None
    assert [e.case for e in events("login_failed", user.id)] == [4, 4, 5]
    assert events("lock_set", user.id)[0].detail["kind"] == "code"
    # Locked: the right app code is not even compared, a recovery code neither, and the mail code is refused.
    r = journey.post({"code": next_code(secret)})
    assert r.status_code == 429
    other = new_journey()
    other.start()
    r = other.password(user)
    assert r.status_code == 429 and CASE5 in page_text(r.text)
    assert code_limit(user.id).locked_until == row.locked_until


def test_a_recovery_code_logs_in_once_tells_the_person_and_suggests_enrolling_again(new_journey, user, mailbox):
    _, codes = enrol(user)
    journey = new_journey()
    page = up_to_recovery_code(journey, user)
    assert "Étape 3 sur 3" in page_text(page.text)
    page = journey.post({"code": codes[3]})
    assert step_of(page) == "recovery-notice" and page.status_code == 200
    text = page_text(page.text)
    assert "Vous avez utilisé un code de secours" in text and "Il vous en reste 9" in text
    assert 'href="/mon-compte/securite"' in page.text
    assert "enregistrer à nouveau votre application d'authentification" in text
    mail = mailbox.wait_for(user.email)
    assert mail["Subject"] == "Un code de secours a été utilisé sur votre compte ameli"
    assert "Il vous en reste 9." in mail.text_body() and "/mon-compte/securite" in mail.text_body()
    assert codes[3] not in mail.text_body()
    r = journey.post({}, follow=False)
    claims = journey.id_token_claims(r)
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert events("login_succeeded", user.id)[0].detail["method"] == "recovery-code"
    assert events("recovery_code_used", user.id)[0].detail == {"remaining": 9}

    again = new_journey()
    up_to_recovery_code(again, user)
    r = again.post({"code": codes[3]})
    assert r.status_code == 401 and WRONG_RECOVERY in alert_text(r.text)


def test_bad_input_gets_a_clear_error_and_counts_nothing(journey, user):
    enrol(user)
    journey.start()
    journey.password(user)
    r = journey.post({"factor": "sms"})
    assert r.status_code == 400 and step_of(r) == "factor-choice" and "<title>Erreur : " in r.text
    page = journey.post({"factor": "app"})
    assert step_of(page) == "app-code"
    r = journey.post({"code": "12ab"})
    assert r.status_code == 400 and 'aria-invalid="true"' in r.text and 'aria-describedby="code-aide code-erreur"' in r.text
    assert "Le code de l'application comporte exactement 6 chiffres." in page_text(r.text)
    assert '<a href="#code">' in r.text and "<title>Erreur : " in r.text
    journey.post({"action": "recovery"})
    r = journey.post({"code": "trop-court"})
    assert r.status_code == 400 and "Un code de secours comporte 12 caractères" in page_text(r.text)
    assert code_limit(user.id) is None
    # A form without its CSRF token changes nothing either.
    r = journey.browser.post(journey.step_url, data={"action": "app"}, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["X-Login-Outcome"] == "400"  # Post/Redirect/Get (issue 11)
    page = journey.get()
    assert page.status_code == 400 and step_of(page) == "recovery-code"
    assert "Ce formulaire a expiré" in page_text(page.text)


def test_the_app_page_can_tick_the_trusted_browser_box(journey, user, mailbox):
    secret, _ = enrol(user)
    up_to_app_code(journey, user)
    r = journey.post({"code": next_code(secret), "remember": "y"}, follow=False)
    journey.callback(r)
    assert any(h.startswith("idp_device=") for h in r.raw.headers.getlist("Set-Cookie"))
    page = journey.start(prompt="login")
    r = journey.password(user, follow=False)
    assert r.status_code == 303 and "/connexion" not in r.headers["Location"]
    assert events("login_succeeded", user.id)[-1].detail["method"] == "trusted-browser"


# --- The FAQ and case 1 mention the app ---------------------------------------------------------------

def test_the_faq_mentions_the_app_and_what_to_do_without_the_phone(web):
    text = page_text(web.get("/connexion/aide").text)
    assert "Utiliser mon application d'authentification" in text
    assert "J'ai perdu le téléphone où se trouve mon application d'authentification" in text
    assert "code de secours" in text and "3646" in text


def test_case_1_offers_the_app_to_a_person_who_set_it_up(new_journey, make_user):
    without_app = make_user(email_verified=False)
    journey = new_journey()
    journey.start()
    page = journey.password(without_app)
    assert page.status_code == 403 and "Votre adresse mail doit être validée" in page_text(page.text)
    assert "application d'authentification" not in page_text(page.text)

    person = make_user(email_verified=False)
    secret, _ = enrol(person)
    journey = new_journey()
    journey.start()
    page = journey.password(person)
    assert page.status_code == 403 and "Vous avez enregistré une application d'authentification" in page_text(page.text)
    page = journey.post({"action": "use-app"})
    assert step_of(page) == "app-code"
    assert "Recevoir plutôt un code par mail" not in page_text(page.text)   # no validated address to send it to
    r = journey.post({"action": "mail"})
    assert r.status_code == 400 and step_of(r) == "app-code"
    journey.callback(journey.post({"code": next_code(secret)}, follow=False))
    assert [e.case for e in events("login_failed", person.id)] == [1]
