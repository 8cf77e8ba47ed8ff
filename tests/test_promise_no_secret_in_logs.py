"""Issue 7 §3: no secret where it does not belong — the logs of a whole day's journeys, grepped.

The production server (``idp serve``, 2 workers) serves the provider
with every application log line on (INFO). Then, as people and relying parties
would: a login with ``login_hint`` (the NIR) in the authorization request, the
password, the security code and « J'utilise mon ordinateur personnel », the code
exchanged for tokens, userinfo, a refresh, logout by POST with ``id_token_hint``;
the forgotten-password journey to its end; an e-mail validation link. Every
secret issued or typed on the way is then looked for in everything the server
wrote (its own lines, the access log, the application's log): none may be there.

Issue 10: the same with ``IDP_LOG_FORMAT=json``, where every line is one JSON object
(the request lines of :mod:`idp.ops.recorder` replacing granian's access log), each
string of it also read decoded.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
import requests

from conftest import PASSWORD, Browser, csrf_token
from login_pages import Journey, page_text
from oidc_flows import OP, query
from recovery_pages import ANSWER, NEW_PASSWORD, Recovery, split_link

VALIDATION_RE = re.compile(r"(https?://[^\s#]+/compte/valider-email#[A-Za-z0-9_-]+)")


@pytest.fixture
def settings():
    return {"CAPTCHA_TEST_ANSWER": ANSWER}


@pytest.fixture(params=["text", "json"])
def log_format(request):
    return request.param


@pytest.fixture
def logged_server(make_served, log_format):
    return make_served(extra_env={"IDP_TEST_LOG_LEVEL": "INFO", "IDP_LOG_FORMAT": log_format})


def json_lines(logs: str) -> list[dict]:
    """Issue 10: with IDP_LOG_FORMAT=json, every line the server writes (granian's own too) is one JSON object."""
    return [json.loads(line) for line in logs.splitlines() if line.strip()]


def strings_in(value) -> list[str]:
    """Every string of a parsed JSON line, keys and values, decoded (escapes undone)."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *strings_in(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return [value] if isinstance(value, str) else []


def test_no_secret_of_a_whole_journey_reaches_a_log(logged_server, log_format, rp, make_user, mailbox):
    server = logged_server
    client, client_secret = rp
    user = make_user()
    secrets: dict[str, str] = {"NIR": user.nir, "password": PASSWORD, "client secret": client_secret}

    # Login, with the NIR as login_hint in the authorization request's query string.
    browser = Browser(mailbox)
    journey = Journey(server.url, browser, client, client_secret)
    page = journey.start(login_hint=user.nir)
    secrets["CSRF token"] = csrf_token(page.text)
    secrets["flow cookie (before)"] = browser.cookies.get("idp_flow")
    journey.up_to_code_entry(user)
    code = journey.code(user.email)
    secrets["security code"] = code
    callback = journey.callback(journey.enter_code(code, remember=True))
    secrets["authorization code"] = callback["code"]
    secrets["session cookie"] = browser.cookies.get("idp_session")
    secrets["trusted-device cookie"] = next(c.value for c in browser.cookies if c.name.startswith("idp_device"))

    # The relying party: tokens, userinfo, refresh.
    op = OP(server.url, browser)
    r = requests.post(f"{server.url}/token", auth=(client.client_id, client_secret), timeout=10, data={
        "grant_type": "authorization_code", "code": callback["code"], "redirect_uri": journey.params["redirect_uri"],
        "code_verifier": journey.verifier})
    assert r.status_code == 200, r.text
    tokens = r.json()
    secrets.update({"access token": tokens["access_token"], "refresh token": tokens["refresh_token"],
                    "ID token": tokens["id_token"], "PKCE verifier": journey.verifier})
    assert op.userinfo(tokens["access_token"]).status_code == 200
    refreshed = op.refresh(client, client_secret, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    secrets["refreshed access token"] = refreshed.json()["access_token"]
    secrets["rotated refresh token"] = refreshed.json()["refresh_token"]

    # RP-initiated logout by POST (the ID token stays out of the URL).
    logout = browser.post(f"{server.url}/logout", data={
        "id_token_hint": refreshed.json().get("id_token", tokens["id_token"]),
        "post_logout_redirect_uri": client.post_logout_redirect_uris[0], "state": "s1"},
        allow_redirects=False, timeout=10)
    assert logout.status_code in (200, 302, 303), logout.text[:300]

    # The forgotten-password journey, to its end.
    recovery = Recovery(server.url, Browser(mailbox), mailbox)
    link = recovery.request_link(user)
    secrets["reset link token"] = split_link(link)[1]
    secrets["new password"] = NEW_PASSWORD
    done = recovery.set_password(link)
    assert done.status_code == 200 and "Votre nouveau mot de passe est enregistré" in page_text(done.text)

    # An e-mail validation link (case 1).
    other = make_user(email_verified=False)
    journey = Journey(server.url, requests.Session(), client, client_secret)
    journey.start()
    journey.password(other)
    assert journey.post({"action": "resend-validation"}).status_code == 403
    validation = VALIDATION_RE.search(mailbox.wait_for(other.email).text_body()).group(1)
    url, _, token = validation.partition("#")
    secrets["e-mail validation token"] = token
    page = journey.browser.get(url, timeout=10)
    confirmed = journey.browser.post(url, data={"csrf_token": csrf_token(page.text), "token": token}, timeout=10)
    assert confirmed.status_code == 200
    secrets["NIR (second person)"] = other.nir

    logs = server.logs()
    # The logs were written (the test would pass on empty logs otherwise): requests and application lines.
    assert "Mail sent through" in logs
    if log_format == "text":
        assert "POST /connexion" in logs and "GET /authorize" in logs and "POST /mot-de-passe-oublie" in logs
    else:
        lines = json_lines(logs)
        requests_seen = {(line["method"], line["route"]) for line in lines if line.get("event") == "request"}
        for seen in [("GET", "/authorize"), ("POST", "/connexion"), ("POST", "/token"), ("GET", "/userinfo"),
                     ("POST", "/logout"), ("POST", "/mot-de-passe-oublie")]:
            assert seen in requests_seen, (seen, sorted(requests_seen))
        # An application event in a request carries the id of that request's line.
        mails = [line for line in lines if line["event"].startswith("Mail sent through")]
        request_ids = {line["request_id"] for line in lines if line.get("event") == "request"}
        assert any(line.get("request_id") in request_ids for line in mails), mails
        logs += "\n".join(s for line in lines for s in strings_in(line))  # decoded too: no escape hides one
    leaked = {name: value for name, value in secrets.items()
              if value and (value in logs or quote(value, safe="") in logs)}
    assert leaked == {}, f"secrets in the logs: {sorted(leaked)}"
