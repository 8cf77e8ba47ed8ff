"""Cookies over https: ``Secure`` and the ``__Host-`` prefix on every cookie the provider sets.

RFC 6265bis §4.1.3.2 (``__Host-``: Secure, Path=/, no Domain, so that neither a plain
http page nor a sibling sub-domain can plant the provider's cookies). The provider
is served over real TLS (werkzeug with a throw-away CA, ``tests/tls.py``) with an
``https://`` issuer, and over plain http with the development names, and a whole
login is done in each: password, code, « J'utilise mon ordinateur personnel », then
single sign-on and a login on the trusted browser, which read each cookie back.
"""

from __future__ import annotations

import pytest
from werkzeug.serving import make_server

from conftest import LiveServer
from oidc_flows import auth_params, query
from tls import make_tls

BASE_NAMES = {"idp_csrf", "idp_flow", "idp_session", "idp_device"}


class TLSLiveServer(LiveServer):
    def __init__(self, app, port, tls):
        super().__init__(app, port)
        self._server.server_close()
        self.url = f"https://127.0.0.1:{port}"
        self._server = make_server("127.0.0.1", port, app, threaded=True, ssl_context=(str(tls.cert), str(tls.key)))


def _set_cookies(response) -> list[str]:
    return response.raw.headers.getlist("Set-Cookie") if response.raw is not None else []


def _attributes(header: str) -> tuple[str, set[str], dict[str, str]]:
    name = header.split("=", 1)[0]
    flags, values = set(), {}
    for part in header.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        (values.__setitem__(key.lower(), value) if value else flags.add(key.lower()))
    return name, flags, values


@pytest.fixture(params=["https", "http"])
def scheme(request, settings, port, tmp_path):
    if request.param == "https":
        settings["ISSUER"] = f"https://127.0.0.1:{port}"
    return request.param


@pytest.fixture
def server(scheme, app, port, tmp_path, monkeypatch):
    if scheme == "https":
        tls = make_tls(tmp_path / "tls")
        running = TLSLiveServer(app, port, tls).start()
        # requests takes these variables over a session's ``verify``: the test CA goes there.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca))
        monkeypatch.setenv("CURL_CA_BUNDLE", str(tls.ca))
    else:
        running = LiveServer(app, port).start()
    yield running
    running.stop()


def test_every_cookie_is_secure_and_host_prefixed_over_https_and_plain_over_http(scheme, server, browser, user, rp):
    client, _ = rp
    seen: list[str] = []
    browser.hooks["response"].append(lambda r, *args, **kwargs: seen.extend(_set_cookies(r)))

    params, _ = auth_params(client)
    r = browser.get(server.url + "/authorize", params=params, allow_redirects=False, timeout=10)
    done = browser.finish_login(server.url + r.headers["Location"] if r.headers["Location"].startswith("/")
                                else r.headers["Location"], user, remember=True)
    assert done.status_code == 303 and "code" in query(done.headers["Location"])

    prefix = "__Host-" if scheme == "https" else ""
    names = {_attributes(h)[0] for h in seen}
    assert names == {prefix + n for n in BASE_NAMES}, names
    for header in seen:
        name, flags, values = _attributes(header)
        assert values.get("path") == "/" and "domain" not in values, header
        assert "httponly" in flags, header
        assert ("secure" in flags) == (scheme == "https"), header
    # The browser kept them under those names (the flow's was cleared when the login ended).
    assert {c.name for c in browser.cookies} == {prefix + n for n in BASE_NAMES - {"idp_flow"}}

    # The provider reads them back under the same names: single sign-on (the session cookie)...
    params, _ = auth_params(client)
    r = browser.get(server.url + "/authorize", params=params, allow_redirects=False, timeout=10)
    assert r.status_code == 302 and "code" in query(r.headers["Location"]), r.headers.get("Location")
    # ... and a new login on this trusted browser skips the code (the device cookie; the flow and CSRF cookies).
    params, _ = auth_params(client, prompt="login")
    r = browser.get(server.url + "/authorize", params=params, allow_redirects=False, timeout=10)
    page = browser.finish_login(server.url + r.headers["Location"], user, stop_at="code")
    assert page.status_code == 303 and "code" in query(page.headers["Location"]), page.text[:300]
