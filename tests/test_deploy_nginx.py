"""The deployment of ``deploy/``, run: nginx with TLS in front of two ``idp serve`` instances acting as one provider.

What runs: Debian's nginx as this user (its own prefix, configuration and logs in the
test's folder, one worker process, free ports) with ``deploy/nginx/idp.conf`` itself,
only its addresses, paths and certificate replaced (a throw-away CA made by the test,
``tests/tls.py``); behind it two ``idp serve`` instances started with
``IDP_ENV=production`` (so ``idp check`` passed for them), each on its own port,
sharing the test's PostgreSQL database and one Redis, with ``IDP_PROXY_COUNT=1``.
nginx balances round robin with one worker: consecutive requests alternate between
the instances, and its access log records the instance that answered each request
(``$upstream_addr``), so every test asserts which instance did what.

Runs when nginx, PostgreSQL (``IDP_TEST_DATABASE_URL``) and Redis (``IDP_TEST_REDIS_URL``)
are there (``.ci/run`` installs nginx and sets both); skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter
from sqlalchemy import select

from conftest import PASSWORD, Browser, free_port
from idp.extensions import db
from idp.models import Limit
from idp.login import policy
from login_pages import page_text
from oidc_flows import auth_params, jwt_parts, query
from served_server import Served
from tls import make_tls

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "deploy" / "nginx" / "idp.conf"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)),
                                      None)
REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL")
CASE6 = "La connexion est bloquée pendant quelques minutes"

pytestmark = [
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (.ci/run installs Debian's: apt-get install nginx)"),
    pytest.mark.skipif(REDIS_URL is None, reason="no Redis (IDP_TEST_REDIS_URL): the instances share their per-IP limits there"),
]

#: One line per request in nginx's log: which instance answered.
LOG_FORMAT = "'$remote_addr $request_method $uri $status $upstream_addr'"
LOG_LINE = re.compile(r"^(\S+) ([A-Z]+) (\S+) (\d{3}) (\S+)$")

MAIN_CONF = """\
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    log_format upstream {log_format};
    access_log {prefix}/access.log upstream;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {prefix}/idp.conf;
}}
"""


class Nginx:
    """``deploy/nginx/idp.conf`` run by the test's own nginx on ``port`` in front of ``upstreams``."""

    def __init__(self, prefix: Path, port: int, upstreams: list[int], tls):
        self.prefix, self.port, self.upstreams = prefix, port, upstreams
        self.url = f"https://127.0.0.1:{port}"
        self.http_port = free_port()
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        site = SITE.read_text()
        for original, replacement in {
            "server 10.0.0.11:8000": f"server 127.0.0.1:{upstreams[0]}",
            "server 10.0.0.12:8000": f"server 127.0.0.1:{upstreams[1]}",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{port} ssl http2;",
            "listen 80;": f"listen 127.0.0.1:{self.http_port};",
            "/etc/ssl/idp/fullchain.pem": str(tls.cert),
            "/etc/ssl/idp/privkey.pem": str(tls.key),
            "alias /opt/idp/idp/static/;": f"alias {ROOT / 'idp' / 'static'}/;",
        }.items():
            assert original in site, f"{SITE} no longer holds {original!r}: update the test"
            site = site.replace(original, replacement)
        site = "\n".join(line for line in site.splitlines() if "[::]" not in line)  # no IPv6 in the test
        (prefix / "idp.conf").write_text(site)
        user = "user root;" if os.geteuid() == 0 else ""  # as root, nginx's workers would otherwise be nobody
        (prefix / "nginx.conf").write_text(MAIN_CONF.format(prefix=prefix, user=user, log_format=LOG_FORMAT))
        self.command = [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log"),
                        "-g", "daemon off;"]
        self.process: subprocess.Popen | None = None

    def start(self) -> "Nginx":
        check = subprocess.run(self.command + ["-t"], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(self.url + "/healthz", timeout=5)
                return self
            except requests.ConnectionError:
                assert self.process.poll() is None, (self.prefix / "error.log").read_text()
                time.sleep(0.05)
        raise RuntimeError("nginx did not answer")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log(self) -> list[tuple[str, str, str, int, int]]:
        """``(client, method, path, status, instance port)`` of each request logged, oldest first."""
        path = self.prefix / "access.log"
        rows = []
        for line in path.read_text().splitlines() if path.exists() else []:
            m = LOG_LINE.match(line)
            if m and m.group(5) != "-":
                rows.append((m.group(1), m.group(2), m.group(3), int(m.group(4)), int(m.group(5).rsplit(":", 1)[1])))
        return rows


class Deployment:
    def __init__(self, nginx: Nginx, instances: list[Served], ca: Path):
        self.nginx, self.instances, self.ca = nginx, instances, ca
        self.url = nginx.url

    def served_by(self, since: int = 0) -> list[int]:
        """The instance (0 or 1) that answered each request nginx logged after the first ``since``."""
        ports = [s.port for s in self.instances]
        return [ports.index(row[4]) for row in self.nginx.log()[since:]]


@pytest.fixture
def deployment(app, tmp_path, monkeypatch):
    if not app.config["IDP_DATABASE_URL"].startswith("postgresql"):
        pytest.skip("several hosts share one PostgreSQL database (SQLite is one host's)")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    tls = make_tls(tmp_path / "tls")
    # requests takes these variables over a session's ``verify``: trust the test CA only.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tls.ca))
    nginx_port, ports = free_port(), [free_port(), free_port()]
    env = {
        "IDP_ENV": "production", "IDP_TESTING": "0", "IDP_ISSUER": f"https://127.0.0.1:{nginx_port}",
        "IDP_PROXY_COUNT": "1", "IDP_RATE_LIMIT_STORAGE_URI": REDIS_URL, "IDP_RATE_LIMIT_CAPTCHA": "4 per minute",
        "IDP_KEY_CACHE_SECONDS": "1", "IDP_CLIENT_CACHE_SECONDS": "1",
    }
    instances = []
    for i, port in enumerate(ports):
        folder = tmp_path / f"instance-{i}"
        folder.mkdir()
        instances.append(Served(app, port, folder, workers=1, threads=4, extra_env=env))
    try:
        with ThreadPoolExecutor(2) as pool:  # both start at once (each runs `idp check` first)
            list(pool.map(lambda instance: instance.start(timeout=90), instances))  # a busy machine is slow
        nginx = Nginx(tmp_path / "nginx", nginx_port, ports, tls).start()
        try:
            yield Deployment(nginx, instances, tls.ca)
        finally:
            nginx.stop()
    finally:
        for instance in instances:
            instance.stop()


def _location(base: str, response) -> str:
    location = response.headers["Location"]
    return location if location.startswith("http") else base + location


def _log_in(deployment: Deployment, browser: Browser, client, user, **extra) -> tuple[str, str]:
    """The whole login through nginx; returns the code and the PKCE verifier.

    Each step is a GET then a POST, so that in strict alternation every POST would reach the same
    instance: the journey is paused once (one more GET of the current step), so that the password and
    the code are taken by different instances.
    """
    params, verifier = auth_params(client, **extra)
    r = browser.get(deployment.url + "/authorize", params=params, allow_redirects=False, timeout=10)
    assert r.status_code in (302, 303), r.text[:300]
    if "/connexion" not in r.headers["Location"]:  # single sign-on
        return query(r.headers["Location"])["code"], verifier
    browser.finish_login(_location(deployment.url, r), user, stop_at="code-request")
    done = browser.finish_login(deployment.url + "/connexion", user)
    assert done.status_code == 303, done.text[:500]
    callback = query(done.headers["Location"])
    assert "code" in callback, done.headers["Location"]
    return callback["code"], verifier


def test_a_login_whose_requests_alternate_between_the_two_instances_completes(deployment, browser, rp, user):
    client, _ = rp
    set_cookies: list[str] = []
    browser.hooks["response"].append(lambda r, *a, **k: set_cookies.extend(r.raw.headers.getlist("Set-Cookie")))
    before = len(deployment.nginx.log())
    _log_in(deployment, browser, client, user)

    # Every request of the login went through nginx, answered by the instances in turn.
    rows = deployment.nginx.log()[before:]
    served = deployment.served_by(before)
    assert [(m, p) for _, m, p, _, _ in rows][:3] == [("GET", "/authorize"), ("GET", "/connexion"), ("POST", "/connexion")]
    assert len(rows) >= 7 and all(a != b for a, b in zip(served, served[1:])), rows
    assert {served[i] for i, row in enumerate(rows) if row[1] == "POST"} == {0, 1}  # each instance took login steps
    for instance in deployment.instances:  # and each logged the steps it served
        assert sum('/connexion ' in line for line in instance.access_lines()) >= 3

    # Cookies over https: Secure and __Host- prefixed, Path=/, no Domain.
    assert {h.split("=", 1)[0] for h in set_cookies} == {"__Host-idp_csrf", "__Host-idp_flow", "__Host-idp_session"}
    for header in set_cookies:
        attributes = [a.strip().lower() for a in header.split(";")[1:]]
        assert "secure" in attributes and "path=/" in attributes and not any(a.startswith("domain") for a in attributes)


def test_readyz_hsts_and_static_files_through_nginx(deployment):
    r = requests.get(deployment.url + "/readyz", timeout=5)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok", "checks": {"database": "ok", "migrations": "ok", "signing_key": "ok", "mail": "ok"}}
    assert r.headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"
    assert requests.get(deployment.url + "/healthz", timeout=5).json() == {"status": "ok"}

    stylesheet = next((ROOT / "idp" / "static" / "css").glob("*.css"))
    before = [len(i.access_lines()) for i in deployment.instances]
    r = requests.get(f"{deployment.url}/static/css/{stylesheet.name}", timeout=5)
    assert r.status_code == 200 and r.content == stylesheet.read_bytes()
    assert r.headers["Strict-Transport-Security"] and r.headers["X-Content-Type-Options"] == "nosniff"
    assert "max-age=" in r.headers["Cache-Control"]
    assert [len(i.access_lines()) for i in deployment.instances] == before  # nginx answered it from disk

    # Plain http is sent to https; metrics are not served to the outside.
    r = requests.get(f"http://127.0.0.1:{deployment.nginx.http_port}/connexion", allow_redirects=False, timeout=5)
    assert r.status_code == 301 and r.headers["Location"] == "https://127.0.0.1/connexion"
    assert requests.get(deployment.url + "/metrics", timeout=5).status_code == 404


def _token(base: str, client, secret: str, **data) -> requests.Response:
    return requests.post(base + "/token", data=data, auth=(client.client_id, secret), timeout=10)


def test_a_token_issued_by_one_is_refreshed_introspected_and_revoked_through_the_other(deployment, browser, rp, user):
    client, secret = rp
    a, b = (instance.url for instance in deployment.instances)
    code, verifier = _log_in(deployment, browser, client, user)

    issued = _token(a, client, secret, grant_type="authorization_code", code=code, code_verifier=verifier,
                    redirect_uri=client.redirect_uris[0])
    assert issued.status_code == 200, issued.text
    tokens = issued.json()

    introspected = requests.post(b + "/introspect", data={"token": tokens["access_token"]},
                                 auth=(client.client_id, secret), timeout=10).json()
    assert introspected["active"] is True and introspected["client_id"] == client.client_id

    refreshed = _token(b, client, secret, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    # The refresh token A issued was rotated by B: A now refuses it (a reuse, which revokes the grant).
    assert _token(a, client, secret, grant_type="refresh_token",
                  refresh_token=tokens["refresh_token"]).json()["error"] == "invalid_grant"

    code, verifier = _log_in(deployment, browser, client, user, prompt="login")
    tokens = _token(a, client, secret, grant_type="authorization_code", code=code, code_verifier=verifier,
                    redirect_uri=client.redirect_uris[0]).json()
    revoked = requests.post(b + "/revoke", data={"token": tokens["access_token"]}, auth=(client.client_id, secret),
                            timeout=10)
    assert revoked.status_code == 200
    assert requests.post(a + "/introspect", data={"token": tokens["access_token"]}, auth=(client.client_id, secret),
                         timeout=10).json() == {"active": False}


def test_idp_keys_rotate_is_seen_by_both_instances_without_restart(deployment, browser, rp, user):
    client, secret = rp
    a, b = (instance.url for instance in deployment.instances)
    code, verifier = _log_in(deployment, browser, client, user)
    tokens = _token(a, client, secret, grant_type="authorization_code", code=code, code_verifier=verifier,
                    redirect_uri=client.redirect_uris[0]).json()
    old_kid = jwt_parts(tokens["id_token"])[0]["kid"]

    env = deployment.instances[0].env
    rotate = subprocess.run([str(Path(sys.executable).with_name("idp")), "keys", "rotate", "--alg", "RS256"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert rotate.returncode == 0, rotate.stderr
    new_kid = re.search(r"RS256: \S+ retired, (\S+) active\.", rotate.stdout).group(1)
    assert new_kid != old_kid
    rotated_at = time.monotonic()

    refresh = tokens["refresh_token"]
    for base in (a, b, a, b):  # each instance signs with the new key within IDP_KEY_CACHE_SECONDS (1 s)
        while True:
            answer = _token(base, client, secret, grant_type="refresh_token", refresh_token=refresh)
            assert answer.status_code == 200, answer.text
            refresh = answer.json()["refresh_token"]
            kid = jwt_parts(answer.json()["id_token"])[0]["kid"]
            if kid == new_kid:
                break
            assert kid == old_kid and time.monotonic() - rotated_at < 3, (kid, old_kid, new_kid)
            time.sleep(0.2)
    for base in (a, b):
        assert new_kid in {k["kid"] for k in requests.get(base + "/jwks.json", timeout=5).json()["keys"]}
        assert old_kid in {k["kid"] for k in requests.get(base + "/jwks.json", timeout=5).json()["keys"]}
    assert all(instance.process.poll() is None for instance in deployment.instances)  # no restart


def test_wrong_passwords_counted_on_both_instances_lock_once(deployment, browser, rp, user):
    client, _ = rp
    params, _ = auth_params(client)
    r = browser.get(deployment.url + "/authorize", params=params, allow_redirects=False, timeout=10)
    page = browser.get(_location(deployment.url, r), timeout=10)
    before = len(deployment.nginx.log())
    answers = []
    for _ in range(3):  # the form comes back with each wrong password: three POSTs in a row, alternating
        r = browser.submit(deployment.url + "/connexion", page.text, {"nir": user.nir, "password": "Mauvais-1234"},
                           timeout=10)
        assert r.status_code == 303  # Post/Redirect/Get: the page that shows the answer, on either instance
        page = browser.get(deployment.url + "/connexion", timeout=10)
        # A reload (the same page again): three requests a round, so that nginx's round robin sends
        # the next wrong password to the other instance.
        page = browser.get(deployment.url + "/connexion", timeout=10)
        answers.append((int(r.headers["X-Login-Outcome"]), page.status_code))
    assert answers == [(401, 401), (401, 401), (429, 429)]
    assert CASE6 in page_text(page.text)
    ports = [i.port for i in deployment.instances]
    posts = [ports.index(row[4]) for row in deployment.nginx.log()[before:] if row[1] == "POST"]
    assert len(posts) == 3 and set(posts) == {0, 1}, posts  # the three wrong passwords went to both instances
    # The right password, on either instance, meets the one lock.
    for _ in range(2):
        page = browser.get(deployment.url + "/connexion", timeout=10)
        r = browser.submit(deployment.url + "/connexion", page.text, {"nir": user.nir, "password": PASSWORD}, timeout=10)
        assert r.status_code == 303 and r.headers["X-Login-Outcome"] == "429"
        r = browser.get(deployment.url + "/connexion", timeout=10)
        assert r.status_code == 429 and CASE6 in page_text(r.text)
    db.session.expire_all()
    locks = db.session.scalars(select(Limit).where(Limit.kind == "password")).all()
    assert len(locks) == 1 and locks[0].key == policy.nir_key(user.nir)
    assert locks[0].count == 3 and locks[0].locked_until is not None


class FromAddress(HTTPAdapter):
    """Connect from another loopback address: another client, as nginx sees it."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def _client_from(address: str) -> requests.Session:
    session = requests.Session()
    session.mount("https://", FromAddress(address))
    return session


def test_per_ip_limits_are_counted_once_across_instances_from_x_forwarded_for(deployment):
    first, second = _client_from("127.0.0.2"), _client_from("127.0.0.3")
    page = deployment.url + "/mot-de-passe-oublie"  # IDP_RATE_LIMIT_CAPTCHA = 4 per minute per address
    before = len(deployment.nginx.log())
    statuses = [first.get(page, timeout=10).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]  # one count for both instances (Redis)
    rows = deployment.nginx.log()[before:]
    assert {row[0] for row in rows} == {"127.0.0.2"} and set(deployment.served_by(before)) == {0, 1}
    # The instances see each client's own address (from X-Forwarded-For), not nginx's: another client is not limited.
    assert second.get(page, timeout=10).status_code == 200
    # A client cannot pose as another: nginx appends the address it saw, the one the instances trust.
    assert first.get(page, headers={"X-Forwarded-For": "198.51.100.7"}, timeout=10).status_code == 429
