"""Benchmark a login with the production Argon2 cost: where does the time go?

Runs the provider in-process (Flask's test client, so no network noise) on a
throw-away SQLite database, or on ``IDP_DATABASE_URL`` when given, with the real
settings (Argon2id m=19 MiB, t=2, p=1), and times each step of the journey, the
token exchange and userinfo. Prints median and 95th percentile per step, and the
share of a whole login taken by the one Argon2 verification.

    make bench            # or: .venv/bin/python scripts/bench.py --rounds 30
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from idp import create_app, crypto, nir  # noqa: E402
from idp.extensions import db  # noqa: E402

PASSWORD = "Bench-password-2024"
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="idp-bench-"))
    outbox = work / "outbox"
    settings = {
        "DATABASE_URL": os.environ.get("IDP_DATABASE_URL") or f"sqlite:///{work / 'bench.sqlite3'}",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "KEY_SECRET": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "MAIL_URL": "console://",
        "MAIL_OUTBOX_DIR": str(outbox),
        "CODE_QUOTA": 10_000,
    }
    app = create_app(settings)
    import logging

    logging.getLogger("idp").setLevel(logging.WARNING)
    with app.app_context():
        from flask_migrate import upgrade

        from idp.models import Client, User
        from idp.oidc import keys

        upgrade()
        keys.ensure_keys()
        cfg = app.config
        print(f"Argon2id: m={cfg['IDP_ARGON2_MEMORY_COST']} KiB, t={cfg['IDP_ARGON2_TIME_COST']}, "
              f"p={cfg['IDP_ARGON2_PARALLELISM']}; database: {db.engine.dialect.name}; rounds: {args.rounds}")
        import datetime as dt

        users = []
        for i in range(args.rounds):
            user = User(nir=nir.with_key(f"18505780{i:05d}"), password_hash=crypto.hash_password(PASSWORD),
                        email=f"bench{i}@exemple.fr", email_verified=True, birth_date=dt.date(1985, 5, 12),
                        given_name="Jeanne", family_name="Martin", affiliation="affiliated")
            db.session.add(user)
            users.append(user)
        client_secret = crypto.random_token(32)
        client = Client(client_id="bench", name="Bench", redirect_uris=["http://127.0.0.1:9/cb"],
                        scope="openid profile email affiliation", grant_types=["authorization_code", "refresh_token"])
        client.set_secret(client_secret)
        db.session.add(client)
        db.session.commit()
        user_data = [(u.nir, u.email) for u in users]
        stored_hash = users[0].password_hash

    timings: dict[str, list[float]] = {}

    def timed(name, fn):
        start = time.perf_counter()
        result = fn()
        timings.setdefault(name, []).append((time.perf_counter() - start) * 1000)
        return result

    with app.app_context():
        for _ in range(args.rounds):
            timed("argon2 verify (alone)", lambda: crypto.verify_password(stored_hash, PASSWORD))

    for nir_value, email in user_data:
        web = app.test_client()
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = urlencode({"response_type": "code", "client_id": "bench", "redirect_uri": "http://127.0.0.1:9/cb",
                           "scope": "openid profile email affiliation", "state": "s", "nonce": secrets.token_hex(8),
                           "code_challenge": challenge, "code_challenge_method": "S256"})
        total = time.perf_counter()
        r = timed("GET /authorize", lambda: web.get(f"/authorize?{query}"))
        page = timed("GET step 0 page", lambda: web.get("/connexion")).get_data(as_text=True)
        r = timed("POST step 0 (password)", lambda: web.post("/connexion", data={
            "csrf_token": CSRF.search(page).group(1), "nir": nir_value, "password": PASSWORD}))
        assert r.status_code == 303, r.status_code
        page = web.get("/connexion").get_data(as_text=True)
        r = timed("POST step 1 (code sent)", lambda: web.post("/connexion", data={
            "csrf_token": CSRF.search(page).group(1)}))
        assert r.status_code == 303, r.status_code
        code = _latest_code(outbox, email)
        page = web.get("/connexion").get_data(as_text=True)
        r = timed("POST step 3 (code, answer)", lambda: web.post("/connexion", data={
            "csrf_token": CSRF.search(page).group(1), "code": code}))
        assert r.status_code == 303, r.status_code
        timings.setdefault("whole login (browser side)", []).append((time.perf_counter() - total) * 1000)
        got = parse_qs(urlparse(r.headers["Location"]).query)["code"][0]
        auth = base64.b64encode(f"bench:{client_secret}".encode()).decode()
        r = timed("POST /token (code → tokens)", lambda: web.post("/token", headers={"Authorization": f"Basic {auth}"},
                  data={"grant_type": "authorization_code", "code": got, "redirect_uri": "http://127.0.0.1:9/cb",
                        "code_verifier": verifier}))
        assert r.status_code == 200, r.get_data(as_text=True)
        access = r.get_json()["access_token"]
        timed("GET /userinfo", lambda: web.get("/userinfo", headers={"Authorization": f"Bearer {access}"}))

    print(f"{'step':<32}{'median ms':>12}{'p95 ms':>10}")
    for name, values in timings.items():
        values = sorted(values)
        p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
        print(f"{name:<32}{statistics.median(values):>12.1f}{p95:>10.1f}")
    argon = statistics.median(timings["argon2 verify (alone)"])
    login = statistics.median(timings["whole login (browser side)"])
    print(f"\nOne Argon2 verification is {argon / login:.0%} of a whole login "
          f"({login - argon:.1f} ms for everything else, mail to the console outbox included).")


def _latest_code(outbox: Path, email: str) -> str:
    for path in sorted(outbox.glob("*.eml"), reverse=True):
        mail = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        if email in str(mail["To"]):
            return re.search(r"\b(\d{6})\b", mail.get_body(preferencelist=("plain",)).get_content()).group(1)
    raise SystemExit(f"no code mailed to {email}")


if __name__ == "__main__":
    main()
