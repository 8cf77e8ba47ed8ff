"""Issue 10, « Metrics »: ``GET /metrics`` on the production server (``idp serve``, 2 workers).

prometheus_client's multiprocess mode: each worker counts in its own files, and
``/metrics``, whichever worker answers, adds them up. Requests spread over both
workers add up to exactly what was sent; the bearer token (``IDP_METRICS_TOKEN``)
guards it, and without it there is no endpoint. The counters an on-call person
watches move when their failure happens for real: the SMTP server stopped, the
database locked (the patterns of tests/test_outage_mail.py and
tests/test_outage_database.py), tokens issued by the token endpoint.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import Browser
from login_pages import Journey
from oidc_flows import OP
from smtp import SMTPServer

TOKEN = "jeton-de-supervision-3f9c2a"


@pytest.fixture
def settings():
    return {"METRICS_TOKEN": TOKEN}


def scrape(url: str, token: str | None = TOKEN) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.get(f"{url}/metrics", headers=headers, timeout=10)


def samples(url: str) -> dict[tuple[str, tuple], float]:
    """Every sample of ``/metrics``: (name, sorted labels) → value."""
    r = scrape(url)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=")
    found = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_spread_over_the_workers_add_up_and_are_guarded_by_the_token(make_served, tmp_path):
    folder = tmp_path / "metrics"
    server = make_served(workers=2, extra_env={"PROMETHEUS_MULTIPROC_DIR": str(folder)})
    # Token protection: none, another one, a scheme other than Bearer → 401; the right one → 200.
    for r in (scrape(server.url, None), scrape(server.url, "wrong"), scrape(server.url, TOKEN[:-1]),
              requests.get(f"{server.url}/metrics", auth=("x", TOKEN), timeout=10)):
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer"), r.status_code
        assert "idp_" not in r.text
    before = samples(server.url)

    sent = 60  # each on a new connection, 8 at a time: both workers take some
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: requests.get(f"{server.url}/userinfo", timeout=10).status_code,
                                 range(sent)))
        jwks = list(pool.map(lambda _: requests.get(f"{server.url}/jwks.json", timeout=10).status_code,
                             range(sent)))
    assert set(statuses) == {401} and set(jwks) == {200}
    after = samples(server.url)

    counted = value(after, "idp_http_requests_total", route="/userinfo", status="401") - \
        value(before, "idp_http_requests_total", route="/userinfo", status="401")
    assert counted == sent
    # The JWKS, answered before Flask once made (the public-document shortcut), is counted too.
    counted = value(after, "idp_http_requests_total", route="/jwks.json", status="200") - \
        value(before, "idp_http_requests_total", route="/jwks.json", status="200")
    assert counted == sent
    latency = value(after, "idp_http_request_duration_seconds_count", route="/userinfo") - \
        value(before, "idp_http_request_duration_seconds_count", route="/userinfo")
    assert latency == sent
    # Both workers counted (one file per process), and the sums above are of both.
    pids = {int(re.search(r"_(\d+)\.db$", p.name).group(1)) for p in folder.glob("counter_*.db")}
    assert pids >= set(server.workers()) and len(server.workers()) == 2, (pids, server.workers())
    # No label holds a raw path, a query string or anything else a client chose.
    routes = {dict(labels).get("route") for (_, labels) in after} - {None}
    assert all(r.startswith("/") or r == "unmatched" for r in routes) and not any("?" in r for r in routes)


def test_metrics_do_not_exist_without_a_token(make_served, app):
    app.config["IDP_METRICS_TOKEN"] = None  # the server's settings are the app's: none set
    server = make_served(workers=1)
    assert scrape(server.url).status_code == 404
    assert scrape(server.url, None).status_code == 404


def test_tokens_issued_are_counted_by_grant_type(served, rp, make_user, mailbox):
    client, secret = rp
    before = samples(served.url)
    browser = Browser(mailbox)
    journey = Journey(served.url, browser, client, secret)
    journey.up_to_code_entry(user := make_user())
    callback = journey.callback(journey.enter_code(journey.code(user.email)))
    r = requests.post(f"{served.url}/token", auth=(client.client_id, secret), timeout=10, data={
        "grant_type": "authorization_code", "code": callback["code"], "redirect_uri": journey.params["redirect_uri"],
        "code_verifier": journey.verifier})
    assert r.status_code == 200, r.text
    assert OP(served.url, browser).refresh(client, secret, r.json()["refresh_token"]).status_code == 200
    again = requests.post(f"{served.url}/token", auth=(client.client_id, secret), timeout=10, data={
        "grant_type": "authorization_code", "code": callback["code"], "redirect_uri": journey.params["redirect_uri"],
        "code_verifier": journey.verifier})
    assert again.status_code == 400  # a code used twice: no token
    after = samples(served.url)
    issued = {grant: value(after, "idp_tokens_issued_total", grant_type=grant)
              - value(before, "idp_tokens_issued_total", grant_type=grant)
              for grant in ("authorization_code", "refresh_token", "client_credentials", "other")}
    assert issued == {"authorization_code": 1, "refresh_token": 1, "client_credentials": 0, "other": 0}
    # The audit trail's domain counters (idp/audit.py, default registry) are collected from the workers' files too.
    assert value(after, "idp_logins_total", outcome="success", case="") - value(
        before, "idp_logins_total", outcome="success", case="") == 1
    assert value(after, "idp_codes_sent_total") - value(before, "idp_codes_sent_total") == 1


@pytest.fixture
def own_smtp():
    holder = {"server": SMTPServer().start(), "running": True}
    yield holder
    if holder["running"]:
        holder["server"].stop()


def test_a_mail_that_cannot_be_sent_is_counted(make_served, app, rp, make_user, own_smtp):
    app.config["IDP_MAIL_URL"] = own_smtp["server"].url
    server = make_served()
    user = make_user()
    journey = Journey(server.url, Browser(own_smtp["server"]), rp[0], rp[1])
    journey.up_to_code_entry(user)
    before = samples(server.url)
    own_smtp["server"].stop()
    own_smtp["running"] = False
    for _ in range(2):
        assert journey.resend().status_code == 503
    after = samples(server.url)
    failed = value(after, "idp_mail_send_failures_total", transport="smtp") - \
        value(before, "idp_mail_send_failures_total", transport="smtp")
    assert failed == 2


def test_a_database_outage_is_counted(make_served, app, database_url, rp, make_user):
    from test_outage_database import PostgresLock, SQLiteLock

    url = database_url[0]
    outage = SQLiteLock(url) if url.startswith("sqlite") else PostgresLock(url)
    server = make_served(extra_env=outage.env)
    journey = Journey(server.url, requests.Session(), rp[0], rp[1])
    journey.start()
    user = make_user()
    before = samples(server.url)
    outage.begin()
    try:
        for _ in range(2):
            assert journey.password(user).status_code == 503  # the password step writes: the lock refuses it
    finally:
        outage.end()
    after = samples(server.url)
    assert value(after, "idp_database_errors_total") - value(before, "idp_database_errors_total") == 2
    assert value(after, "idp_http_requests_total", route="/connexion", status="503") - \
        value(before, "idp_http_requests_total", route="/connexion", status="503") == 2
