"""The servers under load: the provider served by `idp serve` (granian), and the peer (panva's oidc-provider).

Each is started pinned to core 0 (``taskset -c 0``) on a free port, with a
throw-away database (the provider) or its in-memory adapter (the peer), and
comes with the login journey the load generator drives there.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlparse

from loadgen import REDIRECT_URI, Account, BenchError, Browser, Target, code_of, exchange_code, pkce

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SERVER_CORE = "0"
PASSWORD = "Bench-password-2024"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process pinned to the server core; its log kept in a file."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, log: Path):
        self.log = log
        self._log_file = open(log, "wb")
        self.process = subprocess.Popen(["taskset", "-c", SERVER_CORE, *argv], env=env, cwd=cwd,
                                        stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True)

    def worker_pid(self) -> int:
        """The process serving requests: the server's one worker, or the process itself."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids = children.read_text().split() if children.exists() else []
        return int(pids[0]) if pids else self.process.pid

    def cpu_seconds(self) -> float:
        """User and system CPU time of the worker so far."""
        fields = Path(f"/proc/{self.worker_pid()}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory(self) -> dict:
        """VmRSS (now) and VmHWM (peak) of the worker, MiB."""
        status = Path(f"/proc/{self.worker_pid()}/status").read_text()
        values = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M))
        return {"rss_mib": round(int(values["VmRSS"]) / 1024, 1), "peak_rss_mib": round(int(values["VmHWM"]) / 1024, 1)}

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log_file.close()


# --- The provider -------------------------------------------------------------------------------------

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_h"
SCOPE = "openid profile email affiliation"
STEP_RE = re.compile(r'data-step="([a-z0-9-]+)"')
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def database_url(choice: str, work: Path) -> tuple[str, str]:
    """(SQLAlchemy URL, backend name) for ``--database sqlite|postgresql|URL``; a PostgreSQL database is recreated."""
    if choice == "sqlite":
        return f"sqlite:///{work / 'bench.sqlite3'}", "sqlite"
    url = DEFAULT_POSTGRES if choice == "postgresql" else choice
    if url.startswith("sqlite"):
        return url, "sqlite"
    name = urlparse(url).path.lstrip("/")
    if not name.startswith("bench"):
        raise SystemExit(f"refusing to drop and recreate database {name!r}: its name must start with 'bench'")
    import psycopg

    parsed = urlparse(url.replace("postgresql+psycopg://", "postgresql://"))
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url, "postgresql"


def pin_database_backends(url: str, core: int) -> int:
    """Pin the PostgreSQL backends serving ``url``'s database to ``core``; how many were pinned.

    The provider's core must run the provider only, as when the database has a host
    of its own (production): unpinned, the backends answering its queries would be
    scheduled on core 0 too and take their CPU from it, so a PostgreSQL figure would
    measure the database server as much as the provider. Their CPU lands on the load
    generator's core instead, in its "loadgen cpu" column. Backends start when the
    provider opens a pool connection, so this is called again during the run.
    """
    import psycopg

    parsed = urlparse(url.replace("postgresql+psycopg://", "postgresql://"))
    name = parsed.path.lstrip("/")
    pinned = 0
    with psycopg.connect(parsed._replace(path="/postgres").geturl(), autocommit=True) as conn:
        for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)):
            try:
                if os.sched_getaffinity(pid) != {core}:
                    os.sched_setaffinity(pid, {core})
                pinned += 1
            except (PermissionError, ProcessLookupError):  # another user's server, or a backend just gone
                pass
    return pinned


def prepare_idp(env: dict[str, str], users: int, filler_accounts: int = 0,
                filler_tokens: int = 0) -> tuple[list[Account], str, str, dict]:
    """``idp init`` (migrations, signing keys), the accounts and a confidential client, then the filler rows.

    Every account gets the same Argon2id hash at the production cost (one hash
    computed, not one per account): a verification costs the same whatever the salt.
    The filler accounts and live tokens (:mod:`seed`) only make the tables as large
    as in service; the seconds their loading took are returned.
    """
    os.environ.update(env)
    from flask_migrate import upgrade

    from idp import create_app, crypto, nir
    from idp.extensions import db
    from idp.models import Client, User
    from idp.oidc import keys

    app = create_app()
    accounts = []
    with app.app_context():
        upgrade()
        keys.ensure_keys()
        password_hash = crypto.hash_password(PASSWORD)
        for i in range(users):
            nir_value = nir.with_key(f"18505780{i:05d}")
            email = f"bench.{i}@exemple.fr"
            db.session.add(User(nir=nir_value, password_hash=password_hash, email=email, email_verified=True,
                                birth_date=dt.date(1985, 5, 12), given_name="Jeanne", family_name="Martin",
                                gender="female", regime_code="01", caisse="CPAM des Yvelines",
                                affiliation="affiliated"))
            accounts.append(Account(nir_value, PASSWORD, email))
        secret = crypto.random_token(32)
        client = Client(client_id="bench-" + crypto.random_token(8), name="Banc d'essai",
                        redirect_uris=[REDIRECT_URI], post_logout_redirect_uris=[], scope=SCOPE,
                        grant_types=["authorization_code", "refresh_token", "client_credentials"])
        client.set_secret(secret)
        db.session.add(client)
        db.session.commit()
        client_id = client.client_id
        seeding = {}
        if filler_accounts or filler_tokens:
            from seed import seed

            print(f"Seeding {filler_accounts:,} filler accounts and {filler_tokens:,} live tokens...", flush=True)
            seeding = seed(filler_accounts, filler_tokens, password_hash=password_hash, client_pk=client.id,
                           scope=SCOPE)
            print("Seeded in " + ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in seeding.items()))
        db.engine.dispose()
    return accounts, client_id, secret, seeding


def idp_environment(database_url: str, issuer: str, mail_url: str) -> dict[str, str]:
    """The server's environment: fresh secrets, and the production Argon2 cost whatever the shell says."""
    env = {
        **os.environ,
        "IDP_DATABASE_URL": database_url,
        "IDP_ISSUER": issuer,
        "IDP_SECRET_KEY": secrets.token_urlsafe(32),
        "IDP_KEY_SECRET": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "IDP_MAIL_URL": mail_url,
    }
    for name in [n for n in env if n.startswith("IDP_ARGON2_") or n == "IDP_TESTING"]:
        del env[name]
    return env


def start_idp(database: str, mail_url: str, work: Path, users: int, filler_accounts: int = 0,
              filler_tokens: int = 0) -> tuple[Server, Target, list[Account]]:
    port = free_port()
    url, backend = database_url(database, work)
    env = idp_environment(url, f"http://127.0.0.1:{port}", mail_url)
    accounts, client_id, secret, seeding = prepare_idp({k: v for k, v in env.items() if k.startswith("IDP_")}, users,
                                                       filler_accounts, filler_tokens)
    # As production serves it: `idp serve` (granian, access log on), one worker of four threads.
    argv = [str(BIN / "idp"), "serve", "--workers", "1", "--threads", "4", "--bind", f"127.0.0.1:{port}"]
    server = Server(argv, env, ROOT, work / "server.log")
    target = Target("idp", f"http://127.0.0.1:{port}", client_id, secret, SCOPE, idp_login,
                    meta={"backend": backend, "database_url": _without_password(url), "url": url,
                          "device_cookies": ["idp_device"], "server": " ".join(argv), "seeding_s": seeding})
    return server, target, accounts


def _without_password(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


async def authorize(target: Target, browser: Browser, **extra: str) -> tuple[str, str]:
    """An authorization request (code flow, PKCE S256, state, nonce): the verifier and where it leads."""
    verifier, challenge = pkce()
    query = urlencode({"response_type": "code", "client_id": target.client_id, "redirect_uri": REDIRECT_URI,
                       "scope": target.scope, "state": secrets.token_urlsafe(16), "nonce": secrets.token_urlsafe(16),
                       "code_challenge": challenge, "code_challenge_method": "S256", **extra})
    r = await browser.get(f"{target.meta['authorization_endpoint']}?{query}", expect=(302, 303))
    return verifier, r.location


async def idp_login(target: Target, browser: Browser, account: Account, mode: str) -> dict:
    """The browser journey: /authorize, the login pages as they come, the code from the mail, /token."""
    verifier, location = await authorize(target, browser)
    mailbox = target.meta["mailbox"]
    for _ in range(12):
        code = code_of(location)
        if code is not None:
            return await exchange_code(target, browser, code, verifier)
        page = await browser.get(location, expect=(200, 302, 303))
        if page.status != 200:
            location = page.location
            continue
        step = STEP_RE.search(page.text)
        csrf = CSRF_RE.search(page.text)
        if not step or not csrf:
            raise BenchError(f"unexpected page at {urlparse(location).path}: {page.text[:120]!r}")
        if step.group(1) == "password":
            data = {"nir": account.login, "password": account.password}
        elif step.group(1) == "code-request":
            if mode == "trusted":
                raise BenchError("a code was asked on a trusted browser")
            mailbox.forget(account.email)
            data = {}
        elif step.group(1) == "code":
            data = {"code": await mailbox.code_for(account.email)}
            if mode == "remember":
                data["remember"] = "y"
        else:
            raise BenchError(f"unexpected login step {step.group(1)!r}")
        r = await browser.post(location, data={"csrf_token": html.unescape(csrf.group(1)), **data},
                               expect=(302, 303))
        location = r.location
    raise BenchError("the login journey did not end within 12 pages")


# --- The peer ------------------------------------------------------------------------------------------

PEER_DIR = Path(__file__).resolve().parent / "peer"
PEER_SCOPE = "openid profile email"
FORM_RE = re.compile(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', re.S)
INPUT_RE = re.compile(r"<input([^>]*)>")
ATTR_RE = re.compile(r'(\w+)="([^"]*)"')


def start_peer(work: Path, users: int) -> tuple[Server, Target, list[Account]]:
    if not (PEER_DIR / "node_modules" / "oidc-provider").exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=PEER_DIR, check=True)
    port = free_port()
    client_id, secret = "bench", secrets.token_urlsafe(32)
    env = {**os.environ, "PORT": str(port), "BENCH_CLIENT_ID": client_id, "BENCH_CLIENT_SECRET": secret,
           "BENCH_REDIRECT_URI": REDIRECT_URI, "NODE_ENV": "production"}
    node = shutil.which("node") or "node"
    server = Server([node, "server.mjs"], env, PEER_DIR, work / "peer.log")
    version = (PEER_DIR / "node_modules" / "oidc-provider" / "package.json").read_text()
    version = re.search(r'"version":\s*"([^"]+)"', version).group(1)
    target = Target("peer", f"http://127.0.0.1:{port}", client_id, secret, PEER_SCOPE, peer_login,
                    meta={"backend": "memory", "device_cookies": [], "server": f"oidc-provider {version}, node "
                          + subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()},
                    supports={"login": "the peer's login pages are its development interactions, not a product",
                              "login-trusted": "the peer has no trusted-browser shortcut"})
    accounts = [Account(f"bench-{i}", PASSWORD) for i in range(users)]
    return server, target, accounts


async def peer_login(target: Target, browser: Browser, account: Account, mode: str) -> dict:
    """The peer's own (development) interactions: its login form, its consent form, then /token."""
    verifier, location = await authorize(target, browser, prompt="consent")
    for _ in range(12):
        code = code_of(location)
        if code is not None:
            return await exchange_code(target, browser, code, verifier)
        page = await browser.get(location, expect=(200, 302, 303))
        if page.status != 200:
            location = page.location
            continue
        form = FORM_RE.search(page.text)
        if not form:
            raise BenchError(f"no form at {urlparse(location).path}: {page.text[:120]!r}")
        data = {}
        for attrs in INPUT_RE.findall(form.group(2)):
            a = dict(ATTR_RE.findall(attrs))
            if "name" in a:
                data[a["name"]] = html.unescape(a.get("value", ""))
        if "login" in data:
            data["login"] = account.login
        if "password" in data:
            data["password"] = account.password
        action = html.unescape(form.group(1))
        r = await browser.post(urljoin(location, action), data=data, expect=(302, 303))
        location = r.location
    raise BenchError("the peer's login did not end within 12 pages")


def temporary_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="idp-loadbench-"))
