"""The load generator: virtual users on one asyncio loop, over aiohttp.

Each virtual user runs one operation after the other (a request, or a whole
login journey) for the warm-up and the timed window of a scenario. Every HTTP
request is timed; a request counts when it finishes inside the timed window.
Each virtual user is a browser of its own: its cookies are kept by hand (one
dict per browser), so that all of them share one connection pool.

The same code drives the provider and the peer: endpoints are read from the
discovery document, and the one thing that differs, how a person logs in, is
the ``login`` callable of the :class:`Target`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import resource
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import Awaitable, Callable
from urllib.parse import parse_qs, urljoin, urlparse

import aiohttp

REDIRECT_URI = "http://127.0.0.1:9/cb"  # never contacted: the code is read from the Location header


class BenchError(Exception):
    """An operation that did not go as a working provider answers it."""


# --- Browsers ------------------------------------------------------------------------------------

@dataclass
class Response:
    status: int
    headers: "aiohttp.typedefs.LooseHeaders"
    body: bytes
    url: str

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def location(self) -> str:
        return urljoin(self.url, self.headers.get("Location", ""))

    def json(self) -> dict:
        import json

        return json.loads(self.body)


class Recorder:
    """Every request of a scenario: (end time, latency), and the failures."""

    def __init__(self) -> None:
        self.requests: list[tuple[float, float]] = []
        self.ops: list[tuple[float, float]] = []
        self.errors: list[tuple[float, str]] = []

    def window(self, start: float, end: float) -> dict:
        lat = sorted(l for t, l in self.requests if start <= t <= end)
        ops = sorted(l for t, l in self.ops if start <= t <= end)
        errors = [e for t, e in self.errors if start <= t <= end]
        seconds = end - start
        out = {
            "requests": len(lat),
            "requests_per_s": round(len(lat) / seconds, 1),
            "ops": len(ops),
            "ops_per_s": round(len(ops) / seconds, 2),
            "p50_ms": _pct(lat, 50), "p95_ms": _pct(lat, 95), "p99_ms": _pct(lat, 99),
            "op_p50_ms": _pct(ops, 50), "op_p99_ms": _pct(ops, 99),
            "errors": len(errors),
        }
        if errors:
            counts: dict[str, int] = defaultdict(int)
            for e in errors:
                counts[e[:160]] += 1
            out["error_samples"] = dict(sorted(counts.items(), key=lambda kv: -kv[1])[:3])
        return out


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    index = min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))
    return round(values[index] * 1000, 2)


class Browser:
    """One browser (or one client): its cookies, its requests timed into a recorder."""

    def __init__(self, http: aiohttp.ClientSession, recorder: Recorder, cookies: dict[str, str] | None = None):
        self.http = http
        self.recorder = recorder
        self.cookies: dict[str, str] = dict(cookies or {})

    async def request(self, method: str, url: str, expect: tuple[int, ...] = (200,), **kw) -> Response:
        headers = dict(kw.pop("headers", {}) or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        start = time.perf_counter()
        try:
            async with self.http.request(method, url, headers=headers, allow_redirects=False, **kw) as r:
                body = await r.read()
                response = Response(r.status, r.headers, body, url)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise BenchError(f"{method} {urlparse(url).path}: {type(exc).__name__} {exc}") from exc
        end = time.perf_counter()
        self.recorder.requests.append((end, end - start))
        self._keep_cookies(response)
        if response.status not in expect:
            raise BenchError(f"{method} {urlparse(url).path}: {response.status} {response.text[:120]!r}")
        return response

    def get(self, url: str, **kw) -> Awaitable[Response]:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw) -> Awaitable[Response]:
        return self.request("POST", url, **kw)

    def _keep_cookies(self, response: Response) -> None:
        for header in response.headers.getall("Set-Cookie", []):
            first, *attrs = [part.strip() for part in header.split(";")]
            name, _, value = first.partition("=")
            attributes = {a.partition("=")[0].lower(): a.partition("=")[2] for a in attrs}
            expired = attributes.get("max-age") == "0" or "1970" in attributes.get("expires", "")
            if expired or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value


# --- The mailbox: a real SMTP server on the load generator's loop ----------------------------------

CODE_RE = re.compile(r"\b(\d{6})\b")


class Mailbox:
    """aiosmtpd handler: the security code of every mail, queued per recipient."""

    def __init__(self) -> None:
        self.queues: dict[str, asyncio.Queue[str]] = defaultdict(asyncio.Queue)
        self.received = 0

    async def handle_DATA(self, server, session, envelope):
        mail = BytesParser(policy=policy.default).parsebytes(envelope.original_content or envelope.content)
        body = mail.get_body(preferencelist=("plain",))
        match = CODE_RE.search(body.get_content() if body is not None else "")
        self.received += 1
        if match:
            for rcpt in envelope.rcpt_tos:
                self.queues[rcpt.lower()].put_nowait(match.group(1))
        return "250 Message accepted for delivery"

    def forget(self, address: str) -> None:
        queue = self.queues[address.lower()]
        while not queue.empty():
            queue.get_nowait()

    async def code_for(self, address: str, timeout: float = 10) -> str:
        try:
            return await asyncio.wait_for(self.queues[address.lower()].get(), timeout)
        except asyncio.TimeoutError:
            raise BenchError(f"no security code mailed to {address} within {timeout} s") from None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        from aiosmtpd.smtp import SMTP

        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: SMTP(self, hostname=host), host, port)
        return self.server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        self.server.close()


# --- Targets and virtual users ---------------------------------------------------------------------

@dataclass
class Account:
    login: str  # what is typed in the login field (a NIR for the provider)
    password: str
    email: str = ""


@dataclass
class Target:
    """A provider under load: where it is, its client, and how a person logs in there."""

    name: str
    base: str
    client_id: str
    client_secret: str
    scope: str
    # login(target, browser, account, mode) -> the token response of the code exchange; mode: "code" (a
    # browser never seen), "remember" (tick « J'utilise mon ordinateur personnel »), "trusted" (no code expected)
    login: Callable[["Target", Browser, Account, str], Awaitable[dict]]
    supports: dict[str, str] = field(default_factory=dict)  # scenario -> why it is skipped ("" = supported)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.basic = "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()


@dataclass
class VirtualUser:
    index: int
    account: Account
    refresh_token: str = ""
    access_token: str = ""
    device_cookies: dict[str, str] = field(default_factory=dict)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def code_of(location: str) -> str | None:
    if not location.startswith(REDIRECT_URI):
        return None
    params = parse_qs(urlparse(location).query)
    if "code" not in params:
        raise BenchError(f"redirected without a code: {params.get('error')} {params.get('error_description')}")
    return params["code"][0]


async def exchange_code(target: Target, browser: Browser, code: str, verifier: str) -> dict:
    r = await browser.post(target.meta["token_endpoint"], headers={"Authorization": target.basic}, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier})
    tokens = r.json()
    if "access_token" not in tokens:
        raise BenchError(f"code exchange without an access token: {tokens}")
    return tokens


# --- Scenarios ------------------------------------------------------------------------------------

async def _discovery(target, vu, browser):
    await browser.get(target.base + "/.well-known/openid-configuration")


async def _jwks(target, vu, browser):
    await browser.get(target.meta["jwks_uri"])


async def _client_credentials(target, vu, browser):
    r = await browser.post(target.meta["token_endpoint"], headers={"Authorization": target.basic},
                           data={"grant_type": "client_credentials"})
    if "access_token" not in r.json():
        raise BenchError("client_credentials without an access token")


async def _refresh(target, vu, browser):
    r = await browser.post(target.meta["token_endpoint"], headers={"Authorization": target.basic},
                           data={"grant_type": "refresh_token", "refresh_token": vu.refresh_token})
    tokens = r.json()
    if not tokens.get("refresh_token") or tokens["refresh_token"] == vu.refresh_token:
        raise BenchError("refresh without a new refresh token")
    if "id_token" not in tokens:
        raise BenchError("refresh without an ID token")
    vu.refresh_token = tokens["refresh_token"]


async def _userinfo(target, vu, browser):
    r = await browser.get(target.meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {vu.access_token}"})
    if "sub" not in r.json():
        raise BenchError("userinfo without sub")


async def _introspection(target, vu, browser):
    r = await browser.post(target.meta["introspection_endpoint"], headers={"Authorization": target.basic},
                           data={"token": vu.access_token})
    if r.json().get("active") is not True:
        raise BenchError(f"introspection: token not active: {r.text[:120]}")


async def _login(target, vu, browser):
    fresh = Browser(browser.http, browser.recorder)  # a browser that never came here
    await target.login(target, fresh, vu.account, "code")


async def _login_trusted(target, vu, browser):
    # The browser kept its trusted-device cookie, its login session is over.
    again = Browser(browser.http, browser.recorder, vu.device_cookies)
    await target.login(target, again, vu.account, "trusted")


async def _seed_tokens(target, vu, browser):
    tokens = await target.login(target, Browser(browser.http, browser.recorder), vu.account, "code")
    if not tokens.get("refresh_token"):
        raise BenchError("the code exchange gave no refresh token")
    vu.refresh_token, vu.access_token = tokens["refresh_token"], tokens["access_token"]


async def _seed_trusted(target, vu, browser):
    once = Browser(browser.http, browser.recorder)
    await target.login(target, once, vu.account, "remember")
    vu.device_cookies = {k: v for k, v in once.cookies.items() if k in target.meta["device_cookies"]}
    if not vu.device_cookies:
        raise BenchError("no trusted-device cookie after a login with « J'utilise mon ordinateur personnel »")


@dataclass(frozen=True)
class Scenario:
    name: str
    op: Callable
    seed: Callable | None = None
    unit: str = "req"  # what ops_per_s counts: a request, or a whole login


SCENARIOS = {s.name: s for s in [
    Scenario("discovery", _discovery),
    Scenario("jwks", _jwks),
    Scenario("client_credentials", _client_credentials),
    Scenario("refresh", _refresh, seed=_seed_tokens),
    Scenario("userinfo", _userinfo, seed=_seed_tokens),
    Scenario("introspection", _introspection, seed=_seed_tokens),
    Scenario("login", _login, unit="login"),
    Scenario("login-trusted", _login_trusted, seed=_seed_trusted, unit="login"),
]}


async def run_scenario(target: Target, scenario: Scenario, accounts: list[Account], http: aiohttp.ClientSession,
                       warmup: float, duration: float, server_cpu: Callable[[], float] | None = None) -> dict:
    """Seed (outside the measures), warm up, then measure ``duration`` seconds; the figures of the window.

    ``server_cpu``: the CPU seconds the server has used so far, sampled at both ends of the window.
    """
    vus = [VirtualUser(i, account) for i, account in enumerate(accounts)]
    if scenario.seed is not None:
        seeding = Recorder()
        # A few at a time: the seeds are logins, and must not time out behind each other.
        gate = asyncio.Semaphore(4)

        async def seed(vu):
            async with gate:
                await scenario.seed(target, vu, Browser(http, seeding))

        await asyncio.gather(*(seed(vu) for vu in vus))

    recorder = Recorder()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    window_start, window_end = start + warmup, start + warmup + duration

    async def user(vu: VirtualUser) -> None:
        browser = Browser(http, recorder)
        while time.perf_counter() < window_end:
            began = time.perf_counter()
            try:
                await scenario.op(target, vu, browser)
            except BenchError as exc:
                recorder.errors.append((time.perf_counter(), str(exc)))
                if scenario.seed is not None:  # a broken chain: log in again (that time is not counted)
                    try:
                        await scenario.seed(target, vu, Browser(http, Recorder()))
                    except BenchError:
                        await asyncio.sleep(0.1)
                continue
            end = time.perf_counter()
            recorder.ops.append((end, end - began))

    async def sample_server() -> float:
        await asyncio.sleep(window_start - time.perf_counter())
        before = server_cpu()
        await asyncio.sleep(window_end - time.perf_counter())
        return server_cpu() - before

    sampler = asyncio.ensure_future(sample_server()) if server_cpu else None
    await asyncio.gather(*(user(vu) for vu in vus))
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    figures = recorder.window(window_start, window_end)
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    # Above ~90 %, the load generator's core is the limit, not the server's.
    figures["loadgen_cpu"] = round(cpu / (time.perf_counter() - start), 2)
    if sampler is not None:
        # Near 100 %, the server's core is the limit (it is pinned to one core).
        figures["server_cpu"] = round(await sampler / duration, 2)
    figures["unit"] = scenario.unit
    return figures


async def discover(http: aiohttp.ClientSession, base: str, timeout: float = 30) -> dict:
    """The discovery document, waiting for the server to answer."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            async with http.get(base + "/.well-known/openid-configuration") as r:
                if r.status == 200:
                    return await r.json()
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{base} did not answer within {timeout} s")
        await asyncio.sleep(0.2)
