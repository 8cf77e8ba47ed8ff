"""Signed client authentication: ``private_key_jwt`` and ``client_secret_jwt`` (RFC 7523 §2.2 and §3, OIDC Core §9).

Two independent assertion builders talk HTTP to the served provider: Authlib's
relying-party client (``OAuth2Session`` with its ``PrivateKeyJWT`` / ``ClientSecretJWT``
auth) for whole journeys, and PyJWT (or bytes assembled by hand) for every refusal.
Clients are registered with the real ``idp clients add`` command.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt as pyjwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import ClientSecretJWT, PrivateKeyJWT, client_secret_jwt_sign, private_key_jwt_sign
from joserfc.jwk import ECKey, OctKey, RSAKey
from sqlalchemy import func, select

from conftest import free_port
from idp.extensions import db
from idp.models import Client, Token, UsedAssertion
from oidc_flows import assert_oauth_error, jwt_parts
from oidc_rp import callback_params, log_in

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REDIRECT_URI = "http://127.0.0.1:8765/callback"


# --- Registration through the CLI ---------------------------------------------------------------

def register(app, tmp_path, *args) -> dict:
    """``idp clients add … --json`` and its JSON."""
    result = app.test_cli_runner().invoke(args=[
        "clients", "add", "--name", "Passerelle partenaire", "--redirect-uri", REDIRECT_URI,
        "--scope", "openid profile email", *args, "--json"])
    assert result.exit_code == 0, result.output + (result.stderr or "")
    return json.loads(result.stdout)


def jwks_file(tmp_path, *keys) -> str:
    path = tmp_path / f"jwks-{uuid.uuid4().hex}.json"
    path.write_text(json.dumps({"keys": [k.as_dict(private=False) for k in keys]}))
    return str(path)


def rsa_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid}, private=True)


def tokens_issued() -> int:
    db.session.remove()
    return db.session.scalar(select(func.count()).select_from(Token))


# --- Authlib's relying party ---------------------------------------------------------------------

class ShortPrivateKeyJWT(PrivateKeyJWT):
    """Authlib's ``private_key_jwt``, with assertions valid 60 s (its default, 3600 s, is over the limit)."""

    def sign(self, auth, token_endpoint):
        return private_key_jwt_sign(auth.client_secret, client_id=auth.client_id, token_endpoint=token_endpoint,
                                    alg=self.alg, header={"kid": auth.client_secret.kid}, expires_in=60)


class ShortClientSecretJWT(ClientSecretJWT):
    """Authlib's ``client_secret_jwt``, with assertions valid 60 s."""

    def sign(self, auth, token_endpoint):
        return client_secret_jwt_sign(OctKey.import_key(auth.client_secret), client_id=auth.client_id, token_endpoint=token_endpoint,
                                      alg=self.alg, expires_in=60)


def authlib_session(issuer: str, client_id: str, credential, auth) -> OAuth2Session:
    return OAuth2Session(
        client_id=client_id, client_secret=credential, scope="openid profile email", redirect_uri=REDIRECT_URI,
        code_challenge_method="S256", token_endpoint_auth_method=auth, revocation_endpoint_auth_method=auth,
    )


def full_journey(live_server, browser, user, session: OAuth2Session, client_id: str) -> None:
    """Code flow, refresh, introspection and revocation, each authenticated by an assertion Authlib signs."""
    issuer = live_server.url
    meta = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
    verifier = base64.urlsafe_b64encode(uuid.uuid4().bytes * 3).rstrip(b"=").decode()
    url, state = session.create_authorization_url(meta["authorization_endpoint"], nonce="n-" + uuid.uuid4().hex,
                                                  code_verifier=verifier)
    callback = log_in(browser, url, user)
    assert callback_params(callback)["state"] == state
    token = session.fetch_token(meta["token_endpoint"], authorization_response=callback, code_verifier=verifier,
                                state=state)
    assert token["token_type"].lower() == "bearer" and jwt_parts(token["id_token"])[1]["aud"] == client_id

    r = session.introspect_token(meta["introspection_endpoint"], token=token["access_token"])
    assert r.status_code == 200 and r.json()["active"] is True and r.json()["client_id"] == client_id, r.text

    refreshed = session.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    assert refreshed["access_token"] != token["access_token"] and refreshed["refresh_token"]

    r = session.revoke_token(meta["revocation_endpoint"], token=refreshed["refresh_token"],
                             token_type_hint="refresh_token")
    assert r.status_code == 200, r.text
    r = session.introspect_token(meta["introspection_endpoint"], token=refreshed["access_token"])
    assert r.status_code == 200 and r.json() == {"active": False}, r.text
    with pytest.raises(Exception):  # the revoked grant's refresh token no longer works
        session.refresh_token(meta["token_endpoint"], refresh_token=refreshed["refresh_token"])

    # Every assertion was used once: one row per request, none rolled back.
    db.session.remove()
    used = db.session.scalar(select(func.count()).select_from(UsedAssertion).where(UsedAssertion.client_id == client_id))
    assert used == 6


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256"])
def test_rfc7523_2_2_private_key_jwt_with_authlib_code_flow_refresh_introspect_revoke(
        app, live_server, browser, user, tmp_path, alg):
    key = ECKey.generate_key("P-256", parameters={"kid": "ec-1"}, private=True) if alg == "ES256" else rsa_key("rsa-1")
    registered = register(app, tmp_path, "--auth-method", "private_key_jwt", "--auth-signing-alg", alg,
                          "--jwks", jwks_file(tmp_path, key))
    assert "client_secret" not in registered or registered["client_secret"] is None
    assert registered["token_endpoint_auth_method"] == "private_key_jwt"
    assert registered["token_endpoint_auth_signing_alg"] == alg
    session = authlib_session(live_server.url, registered["client_id"], key, ShortPrivateKeyJWT(alg=alg))
    full_journey(live_server, browser, user, session, registered["client_id"])


def test_rfc7523_2_2_client_secret_jwt_with_authlib_code_flow_refresh_introspect_revoke(
        app, live_server, browser, user, tmp_path):
    registered = register(app, tmp_path, "--auth-method", "client_secret_jwt")
    secret = registered["client_secret"]
    assert registered["token_endpoint_auth_signing_alg"] == "HS256"
    session = authlib_session(live_server.url, registered["client_id"], secret, ShortClientSecretJWT())
    full_journey(live_server, browser, user, session, registered["client_id"])


def test_client_secret_jwt_secret_is_stored_encrypted_and_hashed(app, tmp_path):
    registered = register(app, tmp_path, "--auth-method", "client_secret_jwt")
    secret = registered["client_secret"]
    client = db.session.scalar(select(Client).where(Client.client_id == registered["client_id"]))
    assert client.check_client_secret(secret)
    assert secret.encode() not in bytes(client.client_secret_encrypted)
    # Bound to its client: the same ciphertext on another row cannot be read.
    from idp.oidc import client_auth

    assert client_auth.open_secret(client.client_id, client.client_secret_encrypted) == secret
    with pytest.raises(Exception):
        client_auth.open_secret("another-client", client.client_secret_encrypted)
    # Other methods keep no readable secret.
    basic = register(app, tmp_path)
    other = db.session.scalar(select(Client).where(Client.client_id == basic["client_id"]))
    assert other.client_secret_encrypted is None and other.token_endpoint_auth_method == "client_secret_basic"


# --- Refusals, with assertions PyJWT builds ------------------------------------------------------

class Assertions:
    """A private_key_jwt client allowed client_credentials, and assertions for it built with PyJWT."""

    def __init__(self, app, tmp_path, url: str):
        self.url = url
        self.key = rsa_key("k1")
        registered = register(app, tmp_path, "--auth-method", "private_key_jwt", "--jwks",
                              jwks_file(tmp_path, self.key), "--client-credentials")
        self.client_id = registered["client_id"]
        self.pem = self.key.as_pem(private=True)

    def claims(self, **overrides) -> dict:
        now = int(time.time())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": f"{self.url}/token",
                  "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict | None = None, key=None, alg: str = "RS256", kid: str | None = "k1") -> str:
        headers = {"kid": kid} if kid else {}
        return pyjwt.encode(claims or self.claims(), key or self.pem, algorithm=alg, headers=headers)

    def post(self, path: str, assertion: str, data: dict | None = None, **kwargs) -> requests.Response:
        body = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion, **(data or {})}
        return requests.post(f"{self.url}{path}", data=body, timeout=10, **kwargs)

    def token(self, assertion: str) -> requests.Response:
        return self.post("/token", assertion, {"grant_type": "client_credentials", "scope": "openid"})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def by_hand(header: dict, claims: dict, signature: bytes = b"") -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(signature)}"


@pytest.fixture
def signer(app, live_server, tmp_path):
    return Assertions(app, tmp_path, live_server.url)


def assert_invalid_client(r: requests.Response) -> None:
    """``invalid_client``: 400, or 401 (RFC 6749 §5.2; 401 with its challenge when Basic was tried)."""
    assert r.status_code in (400, 401), (r.status_code, r.text)
    assert_oauth_error(r, "invalid_client", r.status_code)


def assert_refused(signer: Assertions, assertion: str, before: int | None = None):
    before = tokens_issued() if before is None else before
    r = signer.token(assertion)
    assert r.status_code in (400, 401), (r.status_code, r.text)
    assert_oauth_error(r, "invalid_client", r.status_code)
    assert tokens_issued() == before, "a token was issued"
    return r


def test_rfc7523_3_a_valid_assertion_is_accepted(signer):
    r = signer.token(signer.sign())
    assert r.status_code == 200 and r.json()["access_token"], r.text
    # aud may also be the issuer (RFC 7523 §3), and the kid may be left out when one key fits.
    r = signer.token(signer.sign(signer.claims(aud=signer.url), kid=None))
    assert r.status_code == 200, r.text


def test_rfc7523_3_wrong_key_is_refused(signer):
    assert_refused(signer, signer.sign(key=rsa_key("k1").as_pem(private=True)))


def test_rfc7523_3_unknown_kid_is_refused(signer):
    assert_refused(signer, signer.sign(kid="k2"))


def test_rfc7523_3_item7_a_replayed_jti_is_refused(signer):
    assertion = signer.sign()
    assert signer.token(assertion).status_code == 200
    before = tokens_issued()
    assert_refused(signer, assertion, before)
    # The same jti in a fresh assertion is a replay too.
    first = signer.claims()
    assert signer.token(signer.sign(first)).status_code == 200
    assert_refused(signer, signer.sign({**first, "iat": first["iat"] + 1}))


def test_rfc7523_3_item4_an_expired_assertion_is_refused(signer):
    now = int(time.time())
    assert_refused(signer, signer.sign(signer.claims(iat=now - 400, exp=now - 120)))


def test_rfc7523_3_item4_an_assertion_expiring_too_late_is_refused(signer):
    now = int(time.time())
    assert_refused(signer, signer.sign(signer.claims(exp=now + 3600)))  # Authlib's default lifetime
    assert_refused(signer, signer.sign(signer.claims(exp=now + 3600, iat=None)))
    assert_refused(signer, signer.sign(signer.claims(iat=now - 290, exp=now + 30)))  # 320 s from iat to exp


def test_rfc7523_3_item4_exp_is_required(signer):
    assert_refused(signer, signer.sign(signer.claims(exp=None)))


def test_rfc7523_3_item3_wrong_aud_is_refused(signer):
    assert_refused(signer, signer.sign(signer.claims(aud="https://autre-fournisseur.exemple.fr/token")))
    assert_refused(signer, signer.sign(signer.claims(aud=f"{signer.url}/userinfo")))


def test_rfc7523_3_items1_2_iss_and_sub_must_be_the_client(signer, app, tmp_path):
    other = register(app, tmp_path, "--client-credentials")["client_id"]
    assert_refused(signer, signer.sign(signer.claims(iss=other)))
    assert_refused(signer, signer.sign(signer.claims(sub=other)))  # another client's id, our key
    assert_refused(signer, signer.sign(signer.claims(iss=None)))


def test_rfc7523_3_alg_none_is_refused(signer):
    assert_refused(signer, by_hand({"alg": "none", "kid": "k1"}, signer.claims()))
    assert_refused(signer, by_hand({"alg": "none"}, signer.claims()))


def test_rfc7523_3_hs256_keyed_with_the_public_key_is_refused(signer):
    """Algorithm confusion: an HMAC whose key is the client's public key, which anyone can read."""
    claims = signer.claims()
    for public in (signer.key.as_pem(private=False), json.dumps(signer.key.as_dict(private=False)).encode()):
        header = {"alg": "HS256", "kid": "k1", "typ": "JWT"}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
        assert_refused(signer, f"{signing_input}.{b64url(signature)}")


def test_rfc7523_3_item7_jti_is_required(signer):
    assert_refused(signer, signer.sign(signer.claims(jti=None)))
    assert_refused(signer, signer.sign(signer.claims(jti="x" * 256)))


def test_rfc7523_3_another_registered_alg_than_the_clients_is_refused(signer):
    # PS256 with the right RSA key: a valid signature, but the client registered RS256.
    assert_refused(signer, signer.sign(alg="PS256"))


@pytest.mark.parametrize("assertion", ["", "a.b", "a.b.c", "é.é.é", "eyJhbGciOiJSUzI1NiJ9.e30.", "x" * 5000])
def test_rfc7523_malformed_assertions_are_invalid_client_not_500(signer, assertion):
    r = signer.token(assertion)
    assert r.status_code in (400, 401), (r.status_code, r.text)


def test_malformed_header_values_are_invalid_client_not_500(signer):
    claims = signer.claims()
    for header in ({"alg": "RS256\"é", "kid": "k1"}, {"alg": "RS256", "kid": ["k1"]}, {"alg": 256},
                   {"alg": "RS256", "crit": ["x"]}):
        assert_refused(signer, by_hand(header, claims, b"sig"))
    assert_refused(signer, by_hand({"alg": "RS256"}, {"sub": 3}))
    assert_refused(signer, by_hand({"alg": "RS256"}, {"sub": "x" * 100}))


def test_rfc7523_assertions_at_revocation_and_introspection_with_the_endpoint_as_aud(signer):
    r = signer.post("/introspect", signer.sign(signer.claims(aud=f"{signer.url}/introspect")), {"token": "nope"})
    assert r.status_code == 200 and r.json() == {"active": False}, r.text
    r = signer.post("/revoke", signer.sign(signer.claims(aud=f"{signer.url}/revoke")), {"token": "nope"})
    assert r.status_code == 200, r.text
    # The introspection endpoint's URL is no audience at the revocation endpoint.
    r = signer.post("/revoke", signer.sign(signer.claims(aud=f"{signer.url}/introspect")), {"token": "nope"})
    assert_invalid_client(r)
    # Each assertion was recorded, even where nothing else was written: none can be replayed.
    assertion = signer.sign(signer.claims(aud=f"{signer.url}/revoke"))
    assert signer.post("/revoke", assertion, {"token": "nope"}).status_code == 200
    assert_invalid_client(signer.post("/revoke", assertion, {"token": "nope"}))
    assertion = signer.sign(signer.claims(aud=f"{signer.url}/introspect"))
    assert signer.post("/introspect", assertion, {"token": "nope"}).status_code == 200
    assert_invalid_client(signer.post("/introspect", assertion, {"token": "nope"}))


# --- One registered method, no other -------------------------------------------------------------

def test_rfc7591_a_client_is_refused_with_any_method_but_its_own(app, live_server, tmp_path):
    url = live_server.url
    cc = {"grant_type": "client_credentials", "scope": "openid"}
    signed = Assertions(app, tmp_path, url)
    # private_key_jwt client: no secret at all; basic and post are refused (401 with the challenge for basic).
    r = requests.post(f"{url}/token", data=cc, auth=(signed.client_id, "anything"), timeout=10)
    assert_oauth_error(r, "invalid_client", 401)
    assert r.headers["WWW-Authenticate"].startswith("Basic")

    hs = register(app, tmp_path, "--auth-method", "client_secret_jwt", "--client-credentials")
    basic = register(app, tmp_path, "--client-credentials")
    post = register(app, tmp_path, "--client-credentials", "--auth-method", "client_secret_post")
    before = tokens_issued()
    # client_secret_jwt client: its right secret, sent as basic or post, is refused.
    r = requests.post(f"{url}/token", data=cc, auth=(hs["client_id"], hs["client_secret"]), timeout=10)
    assert_oauth_error(r, "invalid_client", 401)
    r = requests.post(f"{url}/token", data={**cc, "client_id": hs["client_id"], "client_secret": hs["client_secret"]},
                      timeout=10)
    assert_oauth_error(r, "invalid_client", 401)
    # An RS256 assertion for it (signed with some key) is refused; an HS256 one with a wrong secret too.
    now = int(time.time())
    claims = {"iss": hs["client_id"], "sub": hs["client_id"], "aud": f"{url}/token", "exp": now + 60,
              "jti": uuid.uuid4().hex}
    for assertion in (pyjwt.encode(claims, signed.pem, algorithm="RS256"),
                      pyjwt.encode(claims, "x" * 43, algorithm="HS256")):
        assert_invalid_client(signed.post("/token", assertion, cc))
    # client_secret_basic client: an HS256 assertion with its right secret is refused (and post too).
    assertion = pyjwt.encode({**claims, "iss": basic["client_id"], "sub": basic["client_id"]},
                             basic["client_secret"], algorithm="HS256")
    assert_invalid_client(signed.post("/token", assertion, cc))
    r = requests.post(f"{url}/token", timeout=10,
                      data={**cc, "client_id": basic["client_id"], "client_secret": basic["client_secret"]})
    assert_oauth_error(r, "invalid_client", 401)
    # client_secret_post client: basic refused.
    r = requests.post(f"{url}/token", data=cc, auth=(post["client_id"], post["client_secret"]), timeout=10)
    assert_oauth_error(r, "invalid_client", 401)
    assert tokens_issued() == before
    # Each with its own method: accepted.
    ok = pyjwt.encode({**claims, "jti": uuid.uuid4().hex}, hs["client_secret"], algorithm="HS256")
    assert signed.post("/token", ok, cc).status_code == 200
    assert requests.post(f"{url}/token", data=cc, auth=(basic["client_id"], basic["client_secret"]),
                         timeout=10).status_code == 200
    r = requests.post(f"{url}/token", data={**cc, "client_id": post["client_id"], "client_secret": post["client_secret"]},
                      timeout=10)
    assert r.status_code == 200, r.text


def test_clients_update_changes_the_method_without_re_registration(app, live_server, tmp_path):
    url = live_server.url
    app.config["IDP_CLIENT_CACHE_SECONDS"] = 0  # the change is seen at once (else within the cache delay)
    basic = register(app, tmp_path, "--client-credentials")
    cc = {"grant_type": "client_credentials", "scope": "openid"}
    key = rsa_key("rot-1")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["clients", "update", basic["client_id"], "--jwks", jwks_file(tmp_path, key), "--json"])
    assert result.exit_code == 0, result.output
    updated = json.loads(result.stdout)
    assert updated["token_endpoint_auth_method"] == "private_key_jwt" and updated["client_secret"] is None
    r = requests.post(f"{url}/token", data=cc, auth=(basic["client_id"], basic["client_secret"]), timeout=10)
    assert_oauth_error(r, "invalid_client", 401)  # the old secret is gone
    now = int(time.time())
    claims = {"iss": basic["client_id"], "sub": basic["client_id"], "aud": url, "exp": now + 60,
              "jti": uuid.uuid4().hex}
    assertion = pyjwt.encode(claims, key.as_pem(private=True), algorithm="RS256", headers={"kid": "rot-1"})
    r = requests.post(f"{url}/token", data={**cc, "client_assertion_type": ASSERTION_TYPE,
                                            "client_assertion": assertion}, timeout=10)
    assert r.status_code == 200, r.text
    # Back to a secret: a new one is printed once.
    result = runner.invoke(args=["clients", "update", basic["client_id"], "--auth-method", "client_secret_jwt"])
    assert result.exit_code == 0, result.output
    secret = result.stdout.split("client_secret: ")[1].split()[0]
    assertion = pyjwt.encode({**claims, "jti": uuid.uuid4().hex}, secret, algorithm="HS256")
    r = requests.post(f"{url}/token", data={**cc, "client_assertion_type": ASSERTION_TYPE,
                                            "client_assertion": assertion}, timeout=10)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("args, message", [
    (["--auth-method", "private_key_jwt"], "needs the client's public keys"),
    (["--jwks-uri", "http://keys.exemple.fr/jwks.json"], "must be https"),
    (["--jwks-uri", "http://127.0.0.1:9/jwks.json"], "must be https"),  # loopback http: tests/demo setting only
    (["--auth-method", "client_secret_jwt", "--auth-signing-alg", "RS256"], "HS256"),
    (["--auth-method", "client_secret_basic", "--jwks-uri", "https://keys.exemple.fr/jwks.json"], "private_key_jwt"),
    (["--public", "--auth-method", "private_key_jwt"], "contradict"),
])
def test_clients_add_refuses_inconsistent_signed_registrations(app, args, message):
    app.config["IDP_CLIENT_JWKS_HTTP_LOOPBACK"] = False  # this module's tests allow it; production does not
    result = app.test_cli_runner().invoke(args=["clients", "add", "--name", "X", "--redirect-uri", REDIRECT_URI,
                                                *args])
    assert result.exit_code != 0 and message in result.output, result.output


def test_clients_add_refuses_private_keys_and_keys_unfit_for_the_alg(app, tmp_path):
    key = rsa_key("k")
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [key.as_dict(private=True)]}))
    runner = app.test_cli_runner()
    base = ["clients", "add", "--name", "X", "--redirect-uri", REDIRECT_URI, "--auth-method", "private_key_jwt"]
    result = runner.invoke(args=[*base, "--jwks", str(private)])
    assert result.exit_code != 0 and "private parts" in result.output
    result = runner.invoke(args=[*base, "--jwks", jwks_file(tmp_path, key), "--auth-signing-alg", "ES256"])
    assert result.exit_code != 0 and "ES256" in result.output
    # EC keys and no alg given: ES256 is chosen.
    ec = ECKey.generate_key("P-256", parameters={"kid": "e"}, private=True)
    assert register(app, tmp_path, "--jwks", jwks_file(tmp_path, ec))["token_endpoint_auth_signing_alg"] == "ES256"


# --- Single use under concurrency, on the production server -------------------------------------

def test_rfc7523_3_item7_one_assertion_sent_20_times_in_parallel_succeeds_once(app, make_served, tmp_path):
    served = make_served(workers=2, threads=4)
    signer = Assertions(app, tmp_path, served.url)
    assertion = signer.sign(signer.claims(aud=app.config["IDP_ISSUER"]))
    before = tokens_issued()
    barrier = threading.Barrier(20)

    def send(_):
        barrier.wait(10)
        return signer.token(assertion)

    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(send, range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert all(r.json()["error"] == "invalid_client" for r in responses if r.status_code != 200), \
        [r.text for r in responses]
    assert tokens_issued() == before + 1
    assert not [s for s in served.statuses() if s >= 500]


# --- jwks_uri ---------------------------------------------------------------------------------------

class ReusableServer(ThreadingHTTPServer):
    allow_reuse_address = True  # the same port again once stopped
    daemon_threads = True


class KeyServer:
    """A client's own web server publishing its JWK Set; counts the fetches; can go down and come back."""

    def __init__(self):
        self.port = free_port()
        self.keys: list = []
        self.fetches = 0
        self.delay = 0.0  # seconds before it answers
        self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks.json"

    def start(self) -> "KeyServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                owner.fetches += 1
                time.sleep(owner.delay)
                body = json.dumps({"keys": [k.as_dict(private=False) for k in owner.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ReusableServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def key_server():
    server = KeyServer().start()
    yield server
    server.stop()


@pytest.fixture
def settings():
    return {"CLIENT_JWKS_HTTP_LOOPBACK": True, "CLIENT_JWKS_MIN_INTERVAL": 0}


class RemoteSigner(Assertions):
    def __init__(self, app, url: str, jwks_uri: str):
        self.url = url
        registered = register(app, None, "--jwks-uri", jwks_uri, "--client-credentials")
        assert registered["token_endpoint_auth_method"] == "private_key_jwt"
        self.client_id = registered["client_id"]

    def signed_by(self, key: RSAKey) -> str:
        return pyjwt.encode(self.claims(), key.as_pem(private=True), algorithm="RS256", headers={"kid": key.kid})


def test_jwks_uri_rotation_outage_and_recovery(app, live_server, key_server):
    app.config["IDP_CLIENT_JWKS_CACHE_SECONDS"] = 2
    k1, k2, k3 = rsa_key("2026-01"), rsa_key("2026-02"), rsa_key("2026-03")
    key_server.keys = [k1]
    signer = RemoteSigner(app, live_server.url, key_server.url)
    assert signer.token(signer.signed_by(k1)).status_code == 200
    assert signer.token(signer.signed_by(k1)).status_code == 200
    assert key_server.fetches == 1  # kept

    # The client rotates: its new key is fetched at once, when an assertion first names it.
    key_server.keys = [k2]
    assert signer.token(signer.signed_by(k2)).status_code == 200
    assert key_server.fetches == 2

    # Its server goes down: an unknown kid, then keys past the cache, are refused, never a 500.
    key_server.stop()
    assert_refused(signer, signer.signed_by(k3))
    time.sleep(2.2)
    assert_refused(signer, signer.signed_by(k2))

    # It comes back: no restart needed.
    key_server.start()
    assert signer.token(signer.signed_by(k2)).status_code == 200


def test_jwks_uri_is_not_fetched_more_often_than_the_setting_allows(app, live_server, key_server):
    app.config["IDP_CLIENT_JWKS_MIN_INTERVAL"] = 3600
    k1 = rsa_key("a")
    key_server.keys = [k1]
    signer = RemoteSigner(app, live_server.url, key_server.url)
    assert signer.token(signer.signed_by(k1)).status_code == 200
    for n in range(5):  # unknown kids: one would make the provider fetch again, but not so soon
        assert_refused(signer, signer.signed_by(rsa_key(f"unknown-{n}")))
    assert key_server.fetches == 1


def test_jwks_uri_that_hangs_is_given_up_after_the_timeout(app, live_server, key_server):
    app.config["IDP_CLIENT_JWKS_FETCH_TIMEOUT"] = 0.5
    k1 = rsa_key("a")
    key_server.keys, key_server.delay = [k1], 5
    signer = RemoteSigner(app, live_server.url, key_server.url)
    started = time.monotonic()
    assert_refused(signer, signer.signed_by(k1))
    assert time.monotonic() - started < 3
    key_server.delay = 0
    assert signer.token(signer.signed_by(k1)).status_code == 200


def test_jwks_uri_answer_over_the_size_limit_is_refused(app, live_server, key_server):
    app.config["IDP_CLIENT_JWKS_MAX_BYTES"] = 600
    k1 = rsa_key("a")
    key_server.keys = [k1, rsa_key("b")]  # about 800 bytes
    signer = RemoteSigner(app, live_server.url, key_server.url)
    assert_refused(signer, signer.signed_by(k1))


# --- Discovery, purge ----------------------------------------------------------------------------

def test_discovery_advertises_the_signed_methods_and_their_algorithms(live_server):
    meta = requests.get(f"{live_server.url}/.well-known/openid-configuration", timeout=10).json()
    for endpoint in ("token", "revocation", "introspection"):
        assert {"private_key_jwt", "client_secret_jwt"} <= set(meta[f"{endpoint}_endpoint_auth_methods_supported"])
        assert set(meta[f"{endpoint}_endpoint_auth_signing_alg_values_supported"]) == {"RS256", "PS256", "ES256",
                                                                                     "HS256"}
        assert "none" not in meta[f"{endpoint}_endpoint_auth_signing_alg_values_supported"]
    assert "none" not in meta["introspection_endpoint_auth_methods_supported"]


def test_purge_deletes_used_assertions_once_they_expired(app, signer):
    assert signer.token(signer.sign()).status_code == 200  # kept until exp + leeway: about now + 121 s
    now = int(time.time())
    assert signer.token(signer.sign(signer.claims(iat=now - 200, exp=now + 1))).status_code == 200  # now + 62 s
    runner = app.test_cli_runner()
    assert "used_client_assertions 0" in runner.invoke(args=["purge", "--keep", "0"]).output
    # 100 s from now, the second one is refused as expired whatever happens: its jti may go, not the first's.
    assert "used_client_assertions 1" in runner.invoke(args=["purge", "--keep", "-100"]).output
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(UsedAssertion)) == 1


def test_rotating_a_client_secret_jwt_secret_has_no_overlap(app, live_server, tmp_path):
    """The HMAC key of a client_secret_jwt client is the secret itself: after --rotate-secret only the new one signs."""
    url = live_server.url
    app.config["IDP_CLIENT_CACHE_SECONDS"] = 0
    client = register(app, tmp_path, "--client-credentials", "--auth-method", "client_secret_jwt")
    cc = {"grant_type": "client_credentials", "scope": "openid", "client_assertion_type": ASSERTION_TYPE}

    def assertion(secret: str) -> str:
        now = int(time.time())
        return pyjwt.encode({"iss": client["client_id"], "sub": client["client_id"], "aud": url, "exp": now + 60,
                             "jti": uuid.uuid4().hex}, secret, algorithm="HS256")

    result = app.test_cli_runner().invoke(args=["clients", "update", client["client_id"], "--rotate-secret",
                                                "--overlap", "7d"])
    assert result.exit_code == 0, result.output
    new = result.stdout.split("client_secret: ")[1].split()[0]
    assert "no longer works" in result.stderr
    r = requests.post(f"{url}/token", data={**cc, "client_assertion": assertion(client["client_secret"])}, timeout=10)
    assert_oauth_error(r, "invalid_client", 400)  # no Authorization header was tried: 400 (RFC 6749 §5.2)
    r = requests.post(f"{url}/token", data={**cc, "client_assertion": assertion(new)}, timeout=10)
    assert r.status_code == 200, r.text
