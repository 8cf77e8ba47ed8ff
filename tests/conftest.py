"""Shared fixtures: a migrated database per backend, the app, a served app, users and clients.

Every test runs on SQLite, and also on PostgreSQL when ``IDP_TEST_DATABASE_URL``
is set (``.ci/run`` sets it when PostgreSQL answers). The schema comes from the
Alembic migrations, once per backend; tables are emptied after each test.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import secrets
import socket
import threading

import pytest
import requests
from sqlalchemy import create_engine, delete, text
from werkzeug.serving import make_server

from idp import create_app, nir
from idp.extensions import db
from idp.oidc import backchannel
from idp.recovery import links

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("IDP_TEST_DATABASE_URL") else [])
KEY_SECRET = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
SECRET_KEY = secrets.token_urlsafe(32)
FAST_ARGON2 = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 64, "ARGON2_PARALLELISM": 1}
PASSWORD = "Motdepasse-2024"

pytest_plugins = ["smtp", "login_pages", "recovery_pages", "served_server", "tcp_proxy"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def outbox_dir(tmp_path_factory) -> str:
    """Where the console mailer keeps mails during the tests (never the repo's instance/)."""
    return str(tmp_path_factory.mktemp("outbox"))


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory, outbox_dir):
    """A database migrated to the latest revision, with signing keys, for one backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'idp.sqlite3'}"
    else:
        url = os.environ["IDP_TEST_DATABASE_URL"]
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    app = create_app(_settings(url, "http://127.0.0.1:5000", outbox_dir))
    with app.app_context():
        from flask_migrate import upgrade

        from idp.models import SigningKey
        from idp.oidc import keys

        upgrade()
        keys.ensure_keys()
        snapshot = [
            {c.name: getattr(k, c.name) for c in SigningKey.__table__.columns}
            for k in db.session.scalars(db.select(SigningKey))
        ]
        db.session.execute(delete(SigningKey))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return url, snapshot


def _settings(url: str, issuer: str, outbox: str, **extra) -> dict:
    return {
        "MAIL_OUTBOX_DIR": outbox,
        "DATABASE_URL": url,
        "ISSUER": issuer,
        "TESTING": True,
        "KEY_SECRET": KEY_SECRET,
        "SECRET_KEY": SECRET_KEY,
        "MAIL_URL": "console://",
        # « Nouvelle connexion » (issue 12) is on by default; the tests of the seed's journeys count the mails
        # a login sends (one security code), so it is off here and on in tests/test_mfa_notices.py.
        "NEW_LOGIN_MAIL": False,
        **FAST_ARGON2,
        **extra,
    }


@pytest.fixture(scope="session")
def mail_server():
    """One real SMTP server (aiosmtpd on 127.0.0.1) for the whole run: every mail goes there."""
    from smtp import SMTPServer

    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def mailbox(mail_server):
    """The SMTP server, emptied for this test."""
    mail_server.clear()
    return mail_server


@pytest.fixture
def settings():
    """Per-test setting overrides; a test may add to it before asking for ``app``."""
    return {}


@pytest.fixture
def port():
    return free_port()


@pytest.fixture
def app(database_url, settings, port, outbox_dir, mailbox):
    url, key_rows = database_url
    overrides = {"MAIL_URL": mailbox.url, **settings}
    app = create_app(_settings(url, f"http://127.0.0.1:{port}", outbox_dir, **overrides))
    with app.app_context():
        from idp.models import SigningKey

        for row in key_rows:
            db.session.add(SigningKey(**row))
        db.session.commit()
        yield app
        db.session.remove()
        # A reset-link job queued by the test may still be writing (idp.recovery.links.send_later).
        assert links.wait_for_jobs(10), "a mail job still runs 10 s after the test"
        assert backchannel.wait_for_deliveries(30), "a back-channel logout still runs 30 s after the test"
        # Empty every table, children first.
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(delete(table))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def web(app):
    """Flask's test client (in-process, no network)."""
    return app.test_client()


class LiveServer:
    def __init__(self, app, port):
        self.app = app
        self.url = f"http://127.0.0.1:{port}"
        self._server = make_server("127.0.0.1", port, app, threaded=True)
        self._thread = threading.Thread(target=lambda: self._server.serve_forever(poll_interval=0.05), daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._thread.join(5)


@pytest.fixture
def live_server(app, port):
    """The app served over real HTTP on 127.0.0.1 (its issuer is this address)."""
    server = LiveServer(app, port).start()
    yield server
    server.stop()


# --- data ------------------------------------------------------------------------------

_counter = iter(range(10_000_000))


def make_nir(sex: str = "1", year: str = "85", month: str = "05", dept: str = "78") -> str:
    n = next(_counter)
    return nir.with_key(f"{sex}{year}{month}{dept}{n // 1000 % 1000:03d}{n % 1000:03d}")


@pytest.fixture
def make_user(app):
    from idp import crypto
    from idp.models import User

    def _make(password: str = PASSWORD, **fields) -> User:
        nir_value = make_nir()
        values = {
            "nir": nir_value,
            "email": f"jeanne.martin.{nir_value[-6:]}@exemple.fr",
            "email_verified": True,
            "birth_date": dt.date(1985, 5, 12),
            "given_name": "Jeanne",
            "family_name": "Martin",
            "gender": "female",
            "regime_code": "01",
            "caisse": "CPAM des Yvelines",
            "affiliation": "affiliated",
        }
        values.update(fields)
        user = User(password_hash=crypto.hash_password(password) if password else None, **values)
        db.session.add(user)
        db.session.commit()
        return user

    return _make


@pytest.fixture
def user(make_user):
    """An affiliated person with a verified email: the seed's happy path."""
    return make_user()


@pytest.fixture
def rp(make_client):
    """A confidential relying party: ``(client, secret)``."""
    return make_client()


@pytest.fixture
def op(live_server, browser):
    """The served provider as seen by the test's browser and its relying parties (tests/oidc_flows.py)."""
    from oidc_flows import OP

    return OP(live_server.url, browser)


@pytest.fixture
def make_client(app):
    """Register a relying party; returns ``(client, secret)`` (secret None when public)."""
    from idp import crypto
    from idp.models import Client

    def _make(
        redirect_uris=("http://127.0.0.1:8765/callback",),
        public: bool = False,
        scope: str = "openid profile email affiliation",
        grant_types=("authorization_code", "refresh_token"),
        post_logout_redirect_uris=("http://127.0.0.1:8765/logged-out",),
        alg: str | None = None,
        name: str = "Site partenaire de test",
        userinfo_alg: str | None = None,
    ):
        secret = None if public else crypto.random_token(32)
        client = Client(
            client_id=crypto.random_token(16),
            name=name,
            redirect_uris=list(redirect_uris),
            post_logout_redirect_uris=list(post_logout_redirect_uris),
            scope=scope,
            grant_types=list(grant_types),
            id_token_signed_response_alg=alg,
            userinfo_signed_response_alg=userinfo_alg,
        )
        if secret:
            client.set_secret(secret)
        db.session.add(client)
        db.session.commit()
        return client, secret

    return _make


CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "no CSRF token in page"
    return m.group(1) or m.group(2)


CODE_RE = re.compile(r"\b(\d{6})\b")
STEP_RE = re.compile(r'data-step="([a-z0-9-]+)"')


class Browser(requests.Session):
    """A person's browser: keeps cookies, fills the login pages, reads the person's mail."""

    def __init__(self, mailbox=None):
        super().__init__()
        self.mailbox = mailbox

    def submit(self, url: str, html: str, data: dict, **kwargs) -> requests.Response:
        return self.post(url, data={"csrf_token": csrf_token(html), **data}, allow_redirects=False, **kwargs)

    def security_code(self, email: str) -> str:
        """The code of the newest mail received by ``email``."""
        mail = self.mailbox.wait_for(email)
        match = CODE_RE.search(mail.text_body() or "")
        assert match, f"no 6-digit code in the newest mail to {email}"
        return match.group(1)

    def finish_login(self, location: str, user, password: str = PASSWORD, remember: bool = False,
                     stop_at: str | None = None) -> requests.Response:
        """Fill each login page the journey shows (password, code request, code).

        Returns the first answer that is not another login step: normally the
        redirect to the relying party, or a page explaining a case of the seed.
        ``stop_at`` returns the page of that step instead of filling it.
        """
        base = location.split("/connexion")[0]
        page = self.get(location, timeout=10)
        for attempt in range(8):
            step = STEP_RE.search(page.text or "")
            # The first page may still show the answer to an earlier form (Post/Redirect/Get: a wrong
            # password's 401 stays until the next form); it is filled again, as a person does.
            if (page.status_code != 200 and attempt > 0) or step is None or step.group(1) == stop_at:
                return page
            data = {}
            if step.group(1) == "password":
                data = {"nir": user.nir, "password": password}
            elif step.group(1) == "code":
                data = {"code": self.security_code(user.email)}
                if remember:
                    data["remember"] = "y"
            r = self.submit(location, page.text, data, timeout=10)
            if r.status_code != 303:  # every answer to a login page's POST is a 303, the last one too
                return r
            target = r.headers["Location"]
            target = target if target.startswith("http") else base + target
            if "/connexion" not in target:
                return r
            location = target
            page = self.get(location, timeout=10)
        raise AssertionError(f"the login journey did not end: {location}")


@pytest.fixture
def browser(mailbox):
    with Browser(mailbox) as b:
        yield b


@pytest.fixture
def new_browser(mailbox):
    """More browsers (another computer, another person)."""
    opened: list[Browser] = []

    def _new() -> Browser:
        b = Browser(mailbox)
        opened.append(b)
        return b

    yield _new
    for b in opened:
        b.close()
