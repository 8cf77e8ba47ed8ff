"""The login's answer to the relying party: 303 after a POST, 302 after a GET.

RFC 9700 §4.11 / §4.12: a redirect that answers a form must be a 303, so that no
browser re-sends the form (NIR, password, security code) to the relying party. The
last step's « Me connecter » and « Annuler » are POSTs; single sign-on answers the
GET of ``/authorize`` itself.
"""

from __future__ import annotations

from login_pages import step_of
from oidc_flows import auth_params, query, without_query


def test_the_code_post_is_answered_with_a_303_to_the_relying_party(journey, user):
    page = journey.up_to_code_entry(user)
    assert step_of(page) == "code"
    r = journey.enter_code(journey.code(user.email))
    assert r.request.method == "POST"
    assert r.status_code == 303, r.status_code
    assert without_query(r.headers["Location"]) == journey.params["redirect_uri"]
    got = query(r.headers["Location"])
    assert got["code"] and got["state"] == journey.params["state"] and got["iss"] == journey.url


def test_cancel_is_answered_with_a_303_carrying_access_denied(journey, user):
    journey.start()
    journey.password(user)
    r = journey.post({}, follow=False, url=journey.step_url + "/annuler")
    assert r.request.method == "POST"
    assert r.status_code == 303, r.status_code
    assert without_query(r.headers["Location"]) == journey.params["redirect_uri"]
    got = query(r.headers["Location"])
    assert got["error"] == "access_denied" and got["state"] == journey.params["state"] and "code" not in got


def test_a_password_post_that_ends_the_login_is_a_303_too(journey, user):
    """On a trusted browser the password is the last step: its POST answers the relying party."""
    journey.up_to_code_entry(user)
    journey.callback(journey.enter_code(journey.code(user.email), remember=True))
    page = journey.start(prompt="login")
    assert step_of(page) == "password"
    r = journey.password(user, follow=False)
    assert r.status_code == 303, r.status_code
    assert query(r.headers["Location"])["code"]


def test_single_sign_on_answers_the_get_of_authorize_with_a_302(journey, user):
    journey.up_to_code_entry(user)
    journey.callback(journey.enter_code(journey.code(user.email)))
    params, _ = auth_params(journey.client)
    r = journey.browser.get(f"{journey.url}/authorize", params=params, allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.status_code
    assert without_query(r.headers["Location"]) == params["redirect_uri"]
    assert query(r.headers["Location"])["code"]
