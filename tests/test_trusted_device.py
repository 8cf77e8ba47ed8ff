"""« J'utilise mon ordinateur personnel »: the trusted device (seed step 3 and FAQ).

Ticked, the box leaves a random token in an HttpOnly, SameSite=Lax cookie
(Secure over HTTPS), of which the server keeps only a keyed hash bound to the
user; for six months that browser skips the code. Another browser, a browser
without the cookie, another account, an expired or revoked device: the code
again. ``acr_values=urn:idp:acr:mfa`` asks for the code even on a trusted device.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from conftest import PASSWORD, csrf_token
from idp.extensions import db
from idp.mfa import devices
from idp.models import TrustedDevice, utcnow
from idp.oidc.acr import ACR_MFA
from login_pages import (
    cookie_attributes,
    fresh,
    move,
    near,
    set_cookie_headers,
    step_of,
)
from oidc_flows import auth_params

SIX_MONTHS = 180 * 24 * 3600


def trusted_login(journey, user):
    """A login with the box ticked; returns the device cookie's value."""
    journey.up_to_code_entry(user)
    r = journey.enter_code(journey.code(user.email), remember=True)
    journey.callback(r)
    [header] = set_cookie_headers(r, "idp_device")
    return r, header


def login_again(journey, user, **overrides):
    """A new login in the same browser (``prompt=login``: the session does not answer)."""
    page = journey.start(prompt="login", **overrides)
    assert step_of(page) == "password"
    return journey.password(user, follow=False)


def test_ticked_box_leaves_a_hashed_device_token_in_a_safe_cookie(journey, user):
    r, header = trusted_login(journey, user)
    token, attrs = cookie_attributes(header)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", token)          # 256 random bits
    assert "httponly" in attrs and attrs["samesite"] == "Lax" and attrs["path"] == "/"
    assert "secure" not in attrs                                # the tests' issuer is http://
    assert attrs["max-age"] == str(SIX_MONTHS)
    [device] = fresh(select(TrustedDevice))
    assert device.user_id == user.id
    assert re.fullmatch(r"[0-9a-f]{64}", device.token_hash) and device.token_hash != token
    assert token not in str({c.name: getattr(device, c.name) for c in TrustedDevice.__table__.columns})
    assert near(device.expires_at, utcnow() + timedelta(days=180))
    assert device.revoked_at is None


def test_trusted_device_skips_the_code_with_acr_device(journey, user, mailbox):
    trusted_login(journey, user)
    r = login_again(journey, user)
    # Straight from the password to the relying party: no step 1, no mail.
    claims = journey.id_token_claims(r)
    assert claims["amr"] == ["pwd"] and claims["acr"] == "urn:idp:acr:device"
    assert len(mailbox.to(user.email)) == 1
    [device] = fresh(select(TrustedDevice))
    assert near(device.last_used_at, utcnow())


def test_trusted_device_still_asks_for_the_password(journey, user):
    trusted_login(journey, user)
    journey.start(prompt="login")
    r = journey.password(user, password="Mauvais-1234")
    assert r.status_code == 401 and step_of(r) == "password"


def test_unticked_box_leaves_no_device_and_the_code_is_asked_again(journey, user):
    journey.up_to_code_entry(user)
    r = journey.enter_code(journey.code(user.email))
    journey.callback(r)
    assert set_cookie_headers(r, "idp_device") == [] and fresh(select(TrustedDevice)) == []
    r = login_again(journey, user)
    assert r.status_code == 303 and step_of(journey.get()) == "code-request"


def test_another_browser_is_asked_for_the_code(journey, new_journey, user):
    """FAQ: another browser (or one that refused the cookie) has no token."""
    trusted_login(journey, user)
    other = new_journey()
    other.start()
    other.password(user)
    assert step_of(other.page) == "code-request"


def test_browser_that_lost_the_cookie_is_asked_for_the_code(journey, user):
    trusted_login(journey, user)
    journey.browser.cookies.clear(domain="127.0.0.1", path="/", name="idp_device")
    login_again(journey, user)
    assert step_of(journey.get()) == "code-request"


def test_device_of_one_account_does_not_skip_the_code_of_another(journey, user, make_user):
    trusted_login(journey, user)
    someone_else = make_user()
    login_again(journey, someone_else)
    assert step_of(journey.get()) == "code-request"


def test_expired_device_asks_for_the_code_again(journey, user):
    trusted_login(journey, user)
    move(update(TrustedDevice).values(expires_at=utcnow()))
    login_again(journey, user)
    assert step_of(journey.get()) == "code-request"


def test_device_is_trusted_for_six_months_not_more(journey, user):
    trusted_login(journey, user)
    [device] = fresh(select(TrustedDevice))
    assert device.expires_at - device.created_at == timedelta(days=180)
    # Five months and 29 days later: still trusted.
    move(update(TrustedDevice).values(created_at=device.created_at - timedelta(days=179),
                                      expires_at=utcnow() + timedelta(days=1)))
    assert login_again(journey, user).status_code == 303


def test_password_change_revokes_the_trusted_devices(journey, user, new_journey):
    trusted_login(journey, user)
    other = new_journey()
    trusted_login(other, user)
    assert devices.revoke_all(user.id) == 2                    # what a password change calls
    db.session.commit()
    assert all(d.revoked_at is not None for d in fresh(select(TrustedDevice)))
    login_again(journey, user)
    assert step_of(journey.get()) == "code-request"


def test_acr_values_mfa_forces_the_code_on_a_trusted_device(journey, user, mailbox):
    trusted_login(journey, user)
    login_again(journey, user, acr_values=ACR_MFA)
    assert step_of(journey.get()) == "code-request"
    journey.request_code()
    assert len(mailbox.to(user.email)) == 2
    claims = journey.id_token_claims(journey.enter_code(journey.code(user.email)))
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == ACR_MFA


def test_ticking_again_on_a_trusted_browser_is_not_needed_but_harmless(journey, user):
    trusted_login(journey, user)
    login_again(journey, user, acr_values=ACR_MFA)
    journey.get()
    journey.request_code()
    r = journey.enter_code(journey.code(user.email), remember=True)
    journey.callback(r)
    assert len(fresh(select(TrustedDevice))) == 2
    assert login_again(journey, user).status_code == 303


# --- Cookies over HTTPS --------------------------------------------------------------------------------

def _set_cookies(response) -> dict[str, dict[str, str]]:
    out = {}
    for header in response.headers.getlist("Set-Cookie"):
        name = header.split("=", 1)[0]
        out[name] = cookie_attributes(header)[1]
    return out


@pytest.mark.parametrize("settings", [{"ISSUER": "https://idp.exemple.fr"}], ids=["https"])
def test_every_login_cookie_is_secure_when_the_issuer_is_https(web, make_client, user, mailbox, settings):
    client, _ = make_client()
    base = "https://idp.exemple.fr"
    referer = {}  # browsers send no Referer (Referrer-Policy: no-referrer): the forms work without one
    params, _ = auth_params(client)
    seen: dict[str, dict[str, str]] = {}

    r = web.get("/authorize", query_string=params, base_url=base)
    assert r.status_code == 302
    seen.update(_set_cookies(r))
    page = web.get("/connexion", base_url=base)
    seen.update(_set_cookies(page))
    token = csrf_token(page.get_data(as_text=True))
    r = web.post("/connexion", data={"csrf_token": token, "nir": user.nir, "password": PASSWORD}, base_url=base, headers=referer)
    assert r.status_code == 303
    seen.update(_set_cookies(r))
    r = web.post("/connexion", data={"csrf_token": token}, base_url=base, headers=referer)
    assert r.status_code == 303
    code = re.search(r"\b(\d{6})\b", mailbox.wait_for(user.email).text_body()).group(1)
    r = web.post("/connexion", data={"csrf_token": token, "code": code, "remember": "y"}, base_url=base,
                 headers=referer)
    assert r.status_code == 303 and r.headers["Location"].startswith(params["redirect_uri"])
    seen.update(_set_cookies(r))

    assert {"__Host-idp_csrf", "__Host-idp_flow", "__Host-idp_session", "__Host-idp_device"} <= set(seen)
    for name, attrs in seen.items():
        assert "secure" in attrs, name
        assert "httponly" in attrs and attrs.get("samesite") == "Lax", name
