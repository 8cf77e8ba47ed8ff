"""The seed's error cases 1 to 8, over real HTTP.

Cases 1, 5, 7 and 8 say something about an account: they appear only after the
right password. Case 6 is counted per NIR typed, whether an account exists or
not, and its page is the same either way. A success resets the failure
counters; asking a new code does not reset the wrong-code counter; attempts
during a lock are neither counted nor extend it. Dates are written in Paris time.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from conftest import PASSWORD, make_nir
from idp.login import policy
from idp.models import BrowserSession, EmailValidation, Limit, LoginFlow, User, utcnow
from login_pages import (
    CASE4_CODE,
    CASE4_PASSWORD,
    alert_text,
    code_limit,
    expire_codes,
    flows,
    fresh,
    lock_until,
    move,
    near,
    page_text,
    paris,
    password_limit,
    quota_limit,
    step_of,
    without_secrets,
)
from oidc_flows import auth_params

CASE1 = "Votre adresse mail doit être validée"
CASE3 = "Vous avez demandé trop de codes de sécurité"
CASE5 = "Votre compte est bloqué pendant quelques minutes"
CASE6 = "La connexion est bloquée pendant quelques minutes"
CASE7 = "Vous ne pouvez pas accéder au compte ameli : vous n'êtes rattaché ni au Régime général"
CASE8 = "Votre rattachement à une caisse primaire d'assurance maladie (CPAM) ou à un régime partenaire est en cours."
LINK_RE = re.compile(r"(https?://[^\s#]+/compte/valider-email#[A-Za-z0-9_-]+)")


def open_link(browser, link: str):
    """GET the link's page as a browser does: the fragment (the token) is not sent."""
    return browser.get(link.partition("#")[0], timeout=10)


def confirm_link(browser, link: str, page):
    """« Valider mon adresse mail »: the page's script has put the fragment's token in the form."""
    url, _, token = link.partition("#")
    return browser.post(url, data={"csrf_token": csrf_of(page), "token": token}, timeout=10)


def wrong_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def csrf_of(r) -> str:
    from conftest import csrf_token

    return csrf_token(r.text)


# --- Case 1: no validated email ------------------------------------------------------------------

def test_case1_unvalidated_email_is_shown_only_after_the_right_password(journey, make_user, mailbox):
    user = make_user(email_verified=False)
    journey.start()
    r = journey.password(user, password="Mauvais-1234")
    assert r.status_code == 401 and CASE4_PASSWORD in page_text(r.text) and CASE1 not in page_text(r.text)
    r = journey.password(user)
    assert r.status_code == 403
    text = page_text(r.text)
    assert CASE1 in text
    assert "l'adresse mail de votre compte n'a pas encore été validée" in text
    assert "mail de validation" in text and "3646" in text
    assert ">Recevoir un nouveau mail de validation</button>" in r.text
    assert mailbox.messages == []                       # no security code can be sent
    assert fresh(select(BrowserSession)) == []


def test_case1_no_email_at_all_invites_to_contact_the_caisse(journey, make_user):
    user = make_user(email=None, email_verified=False)
    journey.start()
    r = journey.password(user)
    assert r.status_code == 403
    text = page_text(r.text)
    assert "aucune adresse mail n'est enregistrée dans votre compte" in text
    assert "Contactez votre caisse d'assurance maladie ou appelez le 3646" in text
    assert "resend-validation" not in r.text


def test_case1_validation_link_is_single_use_and_lets_the_login_go_on(journey, make_user, mailbox, live_server):
    user = make_user(email_verified=False)
    journey.start()
    journey.password(user)
    r = journey.post({"action": "resend-validation"})
    assert r.status_code == 403
    assert "Un nouveau mail de validation vient d'être envoyé" in page_text(r.text)

    mail = mailbox.wait_for(user.email)
    assert mail.get_content_type() == "multipart/alternative"
    assert mail["Subject"] == "Votre compte ameli – validez votre adresse mail"
    link = LINK_RE.search(mail.text_body()).group(1)
    assert link in mail.html_body() and link.startswith(live_server.url)
    token = link.partition("#")[2]
    assert "#" in link and token not in link.partition("#")[0]  # never sent to the server by a GET
    [validation] = fresh(select(EmailValidation))
    assert validation.token_hash != token and token not in validation.token_hash
    assert near(validation.expires_at, utcnow() + timedelta(days=1))
    assert f"Ce lien expire le {paris(validation.expires_at)} (heure de Paris)" in mail.text_body().replace("\n", " ")

    # Opening the link (a mail scanner does) validates nothing; the button does.
    browser = journey.browser
    page = open_link(browser, link)
    assert page.status_code == 200 and "Validez votre adresse mail" in page_text(page.text)
    assert fresh(select(User.email_verified).where(User.id == user.id)) == [False]
    done = confirm_link(browser, link, page)
    assert done.status_code == 200 and "Votre adresse mail est validée" in page_text(done.text)
    assert fresh(select(User.email_verified).where(User.id == user.id)) == [True]

    # Single use.
    again = confirm_link(browser, link, open_link(browser, link))
    assert again.status_code == 400 and "Ce lien n'est plus valable" in page_text(again.text)

    # The same login goes on: step 1, the code, the relying party.
    page = journey.get()
    assert step_of(page) == "code-request"
    journey.request_code()
    journey.callback(journey.enter_code(journey.code(user.email)))


def test_case1_validation_link_expires(journey, make_user, mailbox):
    user = make_user(email_verified=False)
    journey.start()
    journey.password(user)
    journey.post({"action": "resend-validation"})
    link = LINK_RE.search(mailbox.wait_for(user.email).text_body()).group(1)
    move(update(EmailValidation).values(expires_at=utcnow()))
    r = confirm_link(journey.browser, link, open_link(journey.browser, link))
    assert r.status_code == 400 and "Ce lien n'est plus valable" in page_text(r.text)
    assert fresh(select(User.email_verified).where(User.id == user.id)) == [False]


def test_case1_only_the_newest_validation_link_works(journey, make_user, mailbox):
    """The mail says « Seul le lien du mail le plus récent fonctionne »."""
    user = make_user(email_verified=False)
    journey.start()
    journey.password(user)
    journey.post({"action": "resend-validation"})
    first = LINK_RE.search(mailbox.wait_for(user.email).text_body()).group(1)
    journey.post({"action": "resend-validation"})
    second = LINK_RE.search(mailbox.wait_for(user.email, after=1).text_body()).group(1)
    assert "Seul le lien du mail le plus récent fonctionne" in mailbox.wait_for(user.email).text_body()
    page = open_link(journey.browser, first)
    assert page.status_code == 200
    assert confirm_link(journey.browser, first, page).status_code == 400
    assert confirm_link(journey.browser, second, page).status_code == 200


def test_case1_validation_link_for_an_address_changed_since_is_refused(journey, make_user, mailbox):
    user = make_user(email_verified=False)
    journey.start()
    journey.password(user)
    journey.post({"action": "resend-validation"})
    link = LINK_RE.search(mailbox.wait_for(user.email).text_body()).group(1)
    move(update(User).where(User.id == user.id).values(email="autre.adresse@exemple.fr"))
    r = confirm_link(journey.browser, link, open_link(journey.browser, link))
    assert r.status_code == 400
    assert fresh(select(User.email_verified).where(User.id == user.id)) == [False]


@pytest.mark.parametrize("settings", [{"CODE_QUOTA": 1}], ids=["quota-1"])
def test_case1_validation_mails_count_in_the_code_quota(journey, make_user, mailbox, settings):
    user = make_user(email_verified=False)
    journey.start()
    journey.password(user)
    assert journey.post({"action": "resend-validation"}).status_code == 403
    r = journey.post({"action": "resend-validation"})
    assert r.status_code == 429
    until = quota_limit(user.id).locked_until
    assert "Trop de mails ont été demandés. Vous pourrez en demander un nouveau le" in page_text(r.text)
    assert paris(until) in page_text(r.text)
    assert len(mailbox.to(user.email)) == 1


# --- Case 2: expired code --------------------------------------------------------------------------

def test_case2_expired_code_is_refused_not_counted_and_a_new_code_works(journey, user, mailbox):
    journey.up_to_code_entry(user)
    old = journey.code(user.email)
    expire_codes()
    r = journey.enter_code(old)
    assert r.status_code == 400 and step_of(r) == "code"
    text = page_text(r.text)
    assert "Ce code de sécurité a expiré : il doit être saisi dans les 15 minutes." in text
    assert "Cliquez sur « Recevoir un nouveau code de sécurité »." in text
    assert code_limit(user.id) is None                        # not a wrong code
    page = journey.resend()
    assert page.status_code == 200 and "Un nouveau code de sécurité vient d'être envoyé" in page_text(page.text)
    assert len(mailbox.to(user.email)) == 2
    new = journey.code(user.email)
    if new != old:
        assert journey.enter_code(old).status_code == 401
    journey.callback(journey.enter_code(new))


def test_case2_code_is_still_valid_just_before_its_end(journey, user):
    journey.up_to_code_entry(user)
    move(update(LoginFlow).values(code_expires_at=utcnow() + timedelta(seconds=5)))
    journey.callback(journey.enter_code(journey.code(user.email)))


# --- Case 3: too many codes -------------------------------------------------------------------------

def test_case3_too_many_codes_block_for_one_hour_with_the_paris_time(journey, user, mailbox):
    journey.up_to_code_entry(user)                     # code 1
    for n in range(2, 6):                              # codes 2 to 5 (quota 5)
        page = journey.resend()
        assert page.status_code == 200, n
    assert len(mailbox.to(user.email)) == 5
    r = journey.resend()                               # the 6th is refused
    assert r.status_code == 429
    until = quota_limit(user.id).locked_until
    assert near(until, utcnow() + timedelta(hours=1))
    text = page_text(r.text)
    assert CASE3 in text and "bloquée pendant une heure" in text
    assert f"Vous pourrez demander un nouveau code le {paris(until)} (heure de Paris)" in alert_text(r.text)
    assert len(mailbox.to(user.email)) == 5
    # « seul le dernier code envoyé fonctionne »: the 5th code still logs in.
    journey.callback(journey.enter_code(journey.code(user.email)))


def test_case3_block_holds_for_a_new_login_is_not_extended_and_ends(new_journey, user, mailbox):
    first = new_journey()
    first.up_to_code_entry(user)
    for _ in range(5):
        r = first.resend()
    assert r.status_code == 429
    # Ten minutes later, another login: right password, then the click is refused with the same date.
    until = utcnow() + timedelta(minutes=50)
    lock_until("code-quota", policy.user_key(user.id), until)
    second = new_journey()
    second.start()
    page = second.password(user)
    assert step_of(page) == "code-request"
    r = second.request_code()
    assert r.status_code == 429 and paris(until) in alert_text(r.text)
    assert quota_limit(user.id).locked_until == until
    assert len(mailbox.to(user.email)) == 5
    # An hour after: codes can be asked again.
    lock_until("code-quota", policy.user_key(user.id), utcnow())
    r = second.get()
    page = second.request_code()
    assert step_of(page) == "code" and len(mailbox.to(user.email)) == 6
    second.callback(second.enter_code(second.code(user.email)))


def test_case3_codes_asked_over_an_hour_ago_are_forgotten(journey, user, mailbox):
    journey.up_to_code_entry(user)
    for _ in range(4):
        journey.resend()
    move(update(Limit).values(window_started_at=utcnow() - timedelta(hours=1)))
    assert journey.resend().status_code == 200           # a new window starts
    assert quota_limit(user.id).count == 1


# --- Case 4: wrong password or code -------------------------------------------------------------------

def test_case4_wrong_password_invites_to_check(journey, user):
    journey.start()
    r = journey.password(user, password="Mauvais-mot-de-passe")
    assert r.status_code == 401 and step_of(r) == "password"
    text = page_text(r.text)
    assert CASE4_PASSWORD in text
    assert "Mauvais-mot-de-passe" not in r.text
    assert f'value="{user.nir}"' in r.text                 # the NIR stays typed
    assert password_limit(user.nir).count == 1
    page = journey.password(user)
    assert step_of(page) == "code-request"


def test_case4_unknown_nir_and_wrong_password_give_the_same_page(new_journey, user):
    known, unknown = new_journey(), new_journey()
    known.start()
    unknown.start()
    stranger = make_nir()
    a = known.password(user, password="Mauvais-1234")
    b = unknown.password(nir=stranger, password="Mauvais-1234")
    assert a.status_code == b.status_code == 401
    assert page_text(a.text) == page_text(b.text)
    assert without_secrets(a.text, user.nir) == without_secrets(b.text, stranger)
    assert sorted(a.headers) == sorted(b.headers)
    assert "Set-Cookie" not in a.headers


def test_case4_unknown_nir_costs_the_same_argon2_verification(web, make_client, user, monkeypatch, app):
    """An unknown NIR is checked against a dummy Argon2 hash: same work, same time."""
    calls = []
    real = PasswordHasher.verify

    def spy(self, hash_, password):
        calls.append(hash_)
        return real(self, hash_, password)

    monkeypatch.setattr(PasswordHasher, "verify", spy)
    client, _ = make_client()
    params, _ = auth_params(client)
    assert web.get("/authorize", query_string=params).status_code == 302
    from conftest import csrf_token

    token = csrf_token(web.get("/connexion").get_data(as_text=True))
    for nir_typed in (user.nir, make_nir()):
        r = web.post("/connexion", data={"csrf_token": token, "nir": nir_typed, "password": "Mauvais-1234"})
        assert r.status_code == 303 and web.get("/connexion").status_code == 401  # Post/Redirect/Get
    assert len(calls) == 2
    from conftest import FAST_ARGON2

    prefix = "$argon2id$v=19$m={ARGON2_MEMORY_COST},t={ARGON2_TIME_COST},p={ARGON2_PARALLELISM}$".format(**FAST_ARGON2)
    assert calls[0] == user.password_hash and calls[1].startswith(prefix) and calls[1] != calls[0]


def test_case4_wrong_code_invites_to_check_and_the_right_one_works(journey, user):
    journey.up_to_code_entry(user)
    code = journey.code(user.email)
    r = journey.enter_code(wrong_code(code))
    assert r.status_code == 401 and step_of(r) == "code"
    text = page_text(r.text)
    assert CASE4_CODE in text and "votre compte sera bloqué pendant quelques minutes" in text
    journey.callback(journey.enter_code(code))


# --- Case 5: three wrong codes --------------------------------------------------------------------------

def _lock_with_wrong_codes(journey, user):
    journey.up_to_code_entry(user)
    code = journey.code(user.email)
    for _ in range(2):
        assert journey.enter_code(wrong_code(code)).status_code == 401
    return code, journey.enter_code(wrong_code(code))


def test_case5_three_wrong_codes_lock_the_account_with_the_paris_time(journey, user):
    code, r = _lock_with_wrong_codes(journey, user)
    assert r.status_code == 429
    row = code_limit(user.id)
    assert near(row.locked_until, utcnow() + timedelta(minutes=5)) and row.count == 3
    text = page_text(r.text)
    assert CASE5 in text
    assert "Le code de sécurité a été saisi de façon incorrecte plusieurs fois de suite." in text
    assert f"Vous pourrez de nouveau essayer de vous connecter le {paris(row.locked_until)} (heure de Paris)" \
        in alert_text(r.text)


def test_case5_attempts_during_the_lock_are_not_counted_and_do_not_extend_it(journey, new_journey, user, mailbox):
    code, r = _lock_with_wrong_codes(journey, user)
    assert r.status_code == 429
    until = utcnow() + timedelta(minutes=3)              # two minutes have passed
    lock_until("code", policy.user_key(user.id), until)
    # The right code, a wrong code, a new code: all refused with the same date, nothing counted.
    for attempt in (lambda: journey.enter_code(code), lambda: journey.enter_code(wrong_code(code)), journey.resend):
        r = attempt()
        assert r.status_code == 429 and CASE5 in page_text(r.text) and paris(until) in alert_text(r.text)
    row = code_limit(user.id)
    assert row.locked_until == until and row.count == 3
    assert len(mailbox.to(user.email)) == 1               # no code sent to a locked account
    # Another login of the account: after the right password, case 5 at once.
    other = new_journey()
    other.start()
    r = other.password(user)
    assert r.status_code == 429 and CASE5 in page_text(r.text) and paris(until) in alert_text(r.text)
    # Without the password, nothing is revealed.
    third = new_journey()
    third.start()
    r = third.password(user, password="Mauvais-1234")
    assert r.status_code == 401 and CASE5 not in page_text(r.text) and CASE4_PASSWORD in page_text(r.text)
    assert code_limit(user.id).locked_until == until


def test_case5_lock_ends_after_a_few_minutes(journey, user):
    code, r = _lock_with_wrong_codes(journey, user)
    lock_until("code", policy.user_key(user.id), utcnow())
    page = journey.resend()
    assert page.status_code == 200
    journey.callback(journey.enter_code(journey.code(user.email)))


def test_case5_asking_a_new_code_does_not_reset_the_wrong_code_counter(journey, user):
    journey.up_to_code_entry(user)
    code = journey.code(user.email)
    for _ in range(2):
        assert journey.enter_code(wrong_code(code)).status_code == 401
    assert journey.resend().status_code == 200
    new = journey.code(user.email)
    assert code_limit(user.id).count == 2
    r = journey.enter_code(wrong_code(new))
    assert r.status_code == 429 and CASE5 in page_text(r.text)


def test_case5_wrong_codes_are_counted_per_account_across_logins(new_journey, user):
    first, second = new_journey(), new_journey()
    first.up_to_code_entry(user)
    code = first.code(user.email)
    for _ in range(2):
        assert first.enter_code(wrong_code(code)).status_code == 401
    second.up_to_code_entry(user)
    r = second.enter_code(wrong_code(second.code(user.email)))
    assert r.status_code == 429 and CASE5 in page_text(r.text)


def test_case5_success_resets_the_wrong_code_counter(new_journey, user):
    first = new_journey()
    first.up_to_code_entry(user)
    code = first.code(user.email)
    for _ in range(2):
        assert first.enter_code(wrong_code(code)).status_code == 401
    first.callback(first.enter_code(code))
    assert code_limit(user.id).count == 0
    second = new_journey()
    second.up_to_code_entry(user)
    code = second.code(user.email)
    for _ in range(2):
        assert second.enter_code(wrong_code(code)).status_code == 401
    second.callback(second.enter_code(code))


# --- Case 6: three wrong passwords ------------------------------------------------------------------------

def test_case6_three_wrong_passwords_lock_the_nir_with_the_paris_time(journey, user):
    journey.start()
    for _ in range(2):
        r = journey.password(user, password="Mauvais-1234")
        assert r.status_code == 401 and CASE4_PASSWORD in page_text(r.text)
    r = journey.password(user, password="Mauvais-1234")
    assert r.status_code == 429
    row = password_limit(user.nir)
    assert near(row.locked_until, utcnow() + timedelta(minutes=5)) and row.count == 3
    text = page_text(r.text)
    assert CASE6 in text
    assert f"Vous pourrez de nouveau essayer le {paris(row.locked_until)} (heure de Paris)" in alert_text(r.text)
    assert "Mot de passe oublié ?" in text


def test_case6_right_password_during_the_lock_is_refused_not_counted_and_does_not_extend_it(journey, user):
    journey.start()
    for _ in range(3):
        r = journey.password(user, password="Mauvais-1234")
    assert r.status_code == 429
    until = utcnow() + timedelta(minutes=4)
    lock_until("password", policy.nir_key(user.nir), until)
    for password in (PASSWORD, "Mauvais-1234"):
        r = journey.password(user, password=password)
        assert r.status_code == 429 and paris(until) in alert_text(r.text)
    row = password_limit(user.nir)
    assert row.locked_until == until and row.count == 3
    assert flows()[0].passed == []
    # A few minutes later: the right password goes on.
    lock_until("password", policy.nir_key(user.nir), utcnow())
    assert step_of(journey.password(user)) == "code-request"


def test_case6_lock_page_for_an_unknown_nir_is_the_same_as_for_a_known_one(new_journey, user):
    known, unknown = new_journey(), new_journey()
    known.start()
    unknown.start()
    stranger = make_nir()
    for _ in range(3):
        a = known.password(user, password="Mauvais-1234")
        b = unknown.password(nir=stranger, password="Mauvais-1234")
    assert a.status_code == b.status_code == 429
    assert password_limit(stranger).locked_until is not None      # counted though no account exists
    # Same lock end for both, then one more attempt each: the same page, byte for byte.
    until = utcnow() + timedelta(minutes=4)
    lock_until("password", policy.nir_key(user.nir), until)
    lock_until("password", policy.nir_key(stranger), until)
    a = known.password(user)
    b = unknown.password(nir=stranger, password=PASSWORD)
    assert a.status_code == b.status_code == 429
    assert page_text(a.text) == page_text(b.text)
    assert without_secrets(a.text, user.nir) == without_secrets(b.text, stranger)
    assert CASE6 in page_text(a.text)


def test_case6_is_counted_per_nir_typed_whatever_the_spacing(new_journey, user, make_user):
    other_user = make_user()
    journey = new_journey()
    journey.start()
    spaced = " ".join([user.nir[0], user.nir[1:3], user.nir[3:5], user.nir[5:7], user.nir[7:10], user.nir[10:13],
                       user.nir[13:]])
    assert journey.password(user, password="Mauvais-1234").status_code == 401
    assert journey.password(nir=spaced, password="Mauvais-1234").status_code == 401
    assert journey.password(nir=spaced.replace(" ", "."), password="Mauvais-1234").status_code == 429
    # Another NIR is not locked.
    assert step_of(journey.password(other_user)) == "code-request"


def test_case6_success_resets_the_password_counter(new_journey, user):
    first = new_journey()
    first.start()
    for _ in range(2):
        assert first.password(user, password="Mauvais-1234").status_code == 401
    assert step_of(first.password(user)) == "code-request"
    assert password_limit(user.nir).count == 0
    second = new_journey()
    second.start()
    for _ in range(2):
        assert second.password(user, password="Mauvais-1234").status_code == 401
    assert step_of(second.password(user)) == "code-request"


# --- Cases 7 and 8: affiliation ---------------------------------------------------------------------------

def test_case7_not_affiliated_cannot_log_in_after_the_right_password(journey, make_user, mailbox):
    user = make_user(affiliation="none")
    journey.start()
    r = journey.password(user, password="Mauvais-1234")
    assert r.status_code == 401 and "Connexion impossible" not in page_text(r.text)
    r = journey.password(user)
    assert r.status_code == 403
    text = page_text(r.text)
    assert "Connexion impossible" in text and CASE7 in text
    assert "ni à l'un de ses régimes partenaires" in text
    assert journey.get().status_code == 403                     # and it stays so
    assert mailbox.messages == [] and fresh(select(BrowserSession)) == []


def test_case8_affiliation_pending_is_temporary(journey, make_user, mailbox):
    user = make_user(affiliation="pending")
    journey.start()
    r = journey.password(user, password="Mauvais-1234")
    assert r.status_code == 401 and CASE8 not in page_text(r.text)
    r = journey.password(user)
    assert r.status_code == 403
    text = page_text(r.text)
    assert "Connexion impossible pour le moment" in text and CASE8 in text
    assert "Cette situation est temporaire" in text
    assert mailbox.messages == []
    # Once the affiliation is effective, the person can log in.
    move(update(User).where(User.id == user.id).values(affiliation="affiliated"))
    assert step_of(journey.get()) == "code-request"
    journey.request_code()
    journey.callback(journey.enter_code(journey.code(user.email)))
