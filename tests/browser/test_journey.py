"""The seed's journey in a real browser: relying party → steps 0, 1, 3 → relying party.

And the trusted device (« J'utilise mon ordinateur personnel »): the next login in
the same browser goes from the password straight back to the relying party;
another browser is asked for a code (FAQ of the seed).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import expect

from oidc_rp import callback_params

from .person import Person


def test_journey_from_relying_party_to_relying_party(live_server, rp, make_user, page, mailbox, shoot, network):
    user = make_user()
    jeanne = Person(page, mailbox, user)

    jeanne.open(rp.authorization_url())
    jeanne.step("password")
    expect(page).to_have_title("Je me connecte – compte ameli")
    shoot(page, "step0-password")
    jeanne.give_password()

    card = jeanne.step("code-request")
    expect(card).to_contain_text("j***@exemple.fr")  # the mailbox, masked
    shoot(page, "step1-code-request")
    code = jeanne.request_code()

    jeanne.step("code")
    shoot(page, "step3-code-entry")
    jeanne.enter_code(code, remember=True)

    callback = jeanne.callback(rp)
    params = callback_params(callback)
    assert params["state"] == rp.state and params["iss"] == live_server.url
    token = rp.fetch_token(callback)
    claims = rp.verify_id_token(token["id_token"], token["access_token"]).claims
    assert "otp" in claims["amr"] and "pwd" in claims["amr"]
    assert claims["acr"] == "urn:idp:acr:mfa"
    assert any(c["name"] == "idp_device" for c in page.context.cookies())

    # Everything the pages loaded came from the provider (and the callback from the relying party).
    assert {urlsplit(u).netloc for u in network} == {urlsplit(live_server.url).netloc, urlsplit(callback).netloc}
    assert any(u.endswith("/static/css/idp.css") for u in network)


def test_trusted_device_skips_the_code_another_browser_does_not(rp, make_user, context, new_context, mailbox):
    user = make_user()
    Person(context.new_page(), mailbox, user).log_in(rp, remember=True)
    sent = len(mailbox.to(user.email))

    # Later, same browser: the password, then straight back to the relying party.
    # (prompt=login: a new login, rather than the single sign-on of the session still open.)
    again = Person(context.new_page(), mailbox, user)
    again.open(rp.authorization_url(prompt="login"))
    again.give_password()
    claims = rp.verify_id_token(rp.fetch_token(again.callback(rp))["id_token"]).claims
    assert "otp" not in claims["amr"] and claims["acr"] == "urn:idp:acr:device"
    assert len(mailbox.to(user.email)) == sent  # no code sent

    # Another browser (no device cookie): a code is asked.
    elsewhere = Person(new_context().new_page(), mailbox, user)
    elsewhere.open(rp.authorization_url())
    elsewhere.give_password()
    elsewhere.enter_code(elsewhere.request_code())
    claims = rp.verify_id_token(rp.fetch_token(elsewhere.callback(rp))["id_token"]).claims
    assert "otp" in claims["amr"]


def test_without_ticking_the_box_the_next_login_asks_a_code(rp, make_user, page, mailbox):
    user = make_user()
    jeanne = Person(page, mailbox, user)
    jeanne.log_in(rp, remember=False)
    assert not any(c["name"] == "idp_device" for c in page.context.cookies())

    jeanne.open(rp.authorization_url(prompt="login"))
    jeanne.give_password()
    jeanne.step("code-request")
