"""A built wheel, installed in a fresh virtualenv, serves the login pages (issue 11, « Packaging and the demo »).

The templates, CSS/JS, migrations and the WSGI module live inside the package: the wheel is built from the
checkout (``pip wheel --no-deps``), installed with its dependencies in a new virtualenv (PyPI, or the
machine's configured package sources), then, from a folder outside the checkout, ``idp init``, ``idp clients
add``, ``idp serve`` and a real ``/authorize`` → ``/connexion``: the step 0 page in French, its stylesheet, ``/``.

Marked ``wheel`` so it can run alone (``pytest -m wheel``); about 1 to 2 minutes, mostly the install.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from conftest import free_port

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parent.parent


def run(argv: list, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=240, **kw)
    assert result.returncode == 0, f"{argv}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtualenv with the wheel of the checkout installed (not editable); returns its bin/."""
    work = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", work / "dist", ROOT])
    [wheel] = (work / "dist").glob("idp-*.whl")
    base_python = getattr(sys, "_base_executable", sys.executable)
    run([base_python, "-m", "venv", work / "venv"])
    run([work / "venv" / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check", wheel])
    return work / "venv" / "bin"


def test_wheel_carries_the_pages_and_the_migrations(installed):
    code = ("import idp, pathlib; p = pathlib.Path(idp.__file__).parent; print(p); "
            "print(all((p / f).is_file() for f in ('templates/base.html', 'templates/login/step0_password.html', "
            "'templates/mail/security_code.txt', 'templates/public/home.html', 'static/css/idp.css', "
            "'migrations/env.py', 'migrations/alembic.ini', 'wsgi.py')))")
    out = run([installed / "python", "-c", code], cwd=installed).stdout.split()
    assert out[0].startswith(str(installed.parent)) and not out[0].startswith(str(ROOT) + "/idp")
    assert out[1] == "True"
    assert list((Path(out[0]) / "migrations" / "versions").glob("*.py"))
    assert list((Path(out[0]) / "recovery" / "voice").glob("*.wav"))


def test_installed_wheel_inits_serves_and_shows_the_login_page(installed, tmp_path):
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        IDP_ISSUER=issuer,
        IDP_DATABASE_URL=f"sqlite:///{tmp_path / 'idp.sqlite3'}",
        IDP_SECRET_KEY=secrets.token_urlsafe(48),
        IDP_KEY_SECRET=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        IDP_MAIL_URL="console://",
        IDP_MAIL_OUTBOX_DIR=str(tmp_path / "outbox"),
        PATH=f"{installed}:{env.get('PATH', '')}",
    )
    idp = installed / "idp"
    assert "Database ready" in run([idp, "init"], env=env, cwd=tmp_path).stdout
    added = run([idp, "clients", "add", "--name", "Site partenaire", "--redirect-uri", "http://127.0.0.1:9/cb"],
                env=env, cwd=tmp_path).stdout
    client_id = re.search(r"client_id:\s+(\S+)", added).group(1)

    server = subprocess.Popen([str(idp), "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"], env=env,
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{issuer}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, server.stdout.read() if server.poll() else ""
            time.sleep(0.2)

        browser = requests.Session()
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        r = browser.get(f"{issuer}/authorize", params={
            "response_type": "code", "client_id": client_id, "redirect_uri": "http://127.0.0.1:9/cb",
            "scope": "openid", "state": "s" * 16, "nonce": "n" * 16,
            "code_challenge": challenge, "code_challenge_method": "S256"}, timeout=10)
        assert r.status_code == 200 and r.url == f"{issuer}/connexion", (r.status_code, r.url)
        assert '<html lang="fr">' in r.text and 'data-step="password"' in r.text
        assert "Numéro de sécurité sociale" in r.text and 'name="csrf_token"' in r.text
        css = browser.get(f"{issuer}/static/css/idp.css", timeout=10)
        assert css.status_code == 200 and ".site-footer" in css.text
        home = browser.get(f"{issuer}/", timeout=10)
        assert home.status_code == 200 and "Le service de connexion du compte ameli" in home.text
    finally:
        server.terminate()
        server.wait(15)
