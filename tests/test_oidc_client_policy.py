"""Per-client policy and what the provider publishes about it.

* OIDC Core §3.1.2.1: ``nonce`` is optional in the code flow when PKCE binds the
  code; still echoed in the ID token and replay-checked when sent.
* RFC 9700 §2.1.1: PKCE S256 required by default; a *confidential* client may be
  allowed without (``--pkce optional``), and must then send a ``nonce``; a public
  client always needs PKCE; ``plain`` is refused; §4.8.2: a ``code_verifier`` for a
  code issued without a challenge is refused.
* OIDC Core §3.1.2.1 ``prompt``: only ``none`` and ``login`` are honoured and
  advertised; ``consent`` / ``select_account`` get ``consent_required`` /
  ``account_selection_required``.
* RFC 8414 §3: the metadata at ``/.well-known/oauth-authorization-server``.
* ``idp clients update``: every setting changes in place; secret rotation with an overlap.
"""

from __future__ import annotations

import json
import time

import pytest
import requests

from idp.extensions import db
from idp.models import Client
from oidc_flows import assert_error_redirect, assert_oauth_error, auth_params, jwt_parts, query, s256


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args):
        result = runner.invoke(args=[str(a) for a in args])
        assert "Traceback" not in result.output, result.output
        if result.exception is not None:
            assert isinstance(result.exception, SystemExit), repr(result.exception)
        db.session.expire_all()
        return result

    return invoke


def without_pkce(client, **overrides):
    return auth_params(client, code_challenge=None, code_challenge_method=None, **overrides)[0]


def allow_without_pkce(client) -> None:
    client.pkce_required = False
    db.session.commit()


# --- nonce (OIDC Core §3.1.2.1) ------------------------------------------------------------------

def test_core_3_1_2_1_nonce_optional_with_pkce(op, rp, user):
    client, secret = rp
    tokens, login = op.tokens(client, secret, user, nonce=None)
    assert "nonce" not in login.params
    _, claims = jwt_parts(tokens["id_token"])
    assert "nonce" not in claims


def test_core_3_1_2_1_nonce_sent_is_echoed_and_replay_checked(op, rp, user):
    client, secret = rp
    tokens, login = op.tokens(client, secret, user)
    assert jwt_parts(tokens["id_token"])[1]["nonce"] == login.params["nonce"]
    params, _ = auth_params(client, nonce=login.params["nonce"])
    got = assert_error_redirect(op.authorize(params), client.redirect_uris[0], "invalid_request", params["state"],
                                op.url)
    assert "replay" in got["error_description"].lower()


# --- PKCE policy (RFC 9700 §2.1.1) ----------------------------------------------------------------

def test_rfc9700_2_1_1_pkce_required_by_default(op, rp):
    client, _ = rp
    params = without_pkce(client)  # with a nonce: still refused
    got = assert_error_redirect(op.authorize(params), client.redirect_uris[0], "invalid_request", params["state"],
                                op.url)
    assert "PKCE" in got["error_description"]


def test_rfc9700_2_1_1_confidential_client_allowed_without_pkce_must_send_a_nonce(op, rp, user):
    client, secret = rp
    allow_without_pkce(client)
    params = without_pkce(client, nonce=None)
    assert_error_redirect(op.authorize(params), client.redirect_uris[0], "invalid_request", params["state"], op.url)

    # With a nonce: the code is issued and exchanged without a verifier.
    login = op.login(client, user, code_challenge=None, code_challenge_method=None)
    r = op.exchange(client, secret, login, code_verifier=None)
    assert r.status_code == 200, r.text
    assert jwt_parts(r.json()["id_token"])[1]["nonce"] == login.params["nonce"]


def test_rfc9700_4_8_2_verifier_for_a_code_without_challenge_is_refused(op, rp, user):
    client, secret = rp
    allow_without_pkce(client)
    login = op.login(client, user, code_challenge=None, code_challenge_method=None)
    assert_oauth_error(op.exchange(client, secret, login), "invalid_request")  # login.verifier sent


def test_client_allowed_without_pkce_that_sends_pkce_is_held_to_it(op, rp, user):
    client, secret = rp
    allow_without_pkce(client)
    login = op.login(client, user, nonce=None)  # PKCE sent: no nonce needed
    assert_oauth_error(op.exchange(client, secret, login, code_verifier=None), "invalid_request")
    login = op.login(client, user, nonce=None)
    assert_oauth_error(op.exchange(client, secret, login, code_verifier="w" * 50), "invalid_grant")
    login = op.login(client, user, nonce=None)
    assert op.exchange(client, secret, login).status_code == 200


def test_plain_is_refused_even_for_a_client_allowed_without_pkce(op, rp):
    client, _ = rp
    allow_without_pkce(client)
    params, verifier = auth_params(client, code_challenge_method="plain")
    params["code_challenge"] = verifier
    assert_error_redirect(op.authorize(params), client.redirect_uris[0], "invalid_request", params["state"], op.url)
    params, _ = auth_params(client, code_challenge=None)  # a method without a challenge
    assert_error_redirect(op.authorize(params), client.redirect_uris[0], "invalid_request", params["state"], op.url)


def test_public_client_always_needs_pkce(op, make_client, cli):
    client, _ = make_client(public=True)
    r = cli("clients", "update", client.client_id, "--pkce", "optional")
    assert r.exit_code == 2 and "public client always needs PKCE" in r.output
    r = cli("clients", "add", "--name", "SPA", "--public", "--redirect-uri", "https://spa.exemple.fr/cb",
            "--pkce", "optional")
    assert r.exit_code == 2 and "public client always needs PKCE" in r.output
    # Even if the flag were set in the database by hand, a public client gets no code without PKCE.
    allow_without_pkce(client)
    params = without_pkce(client)
    assert_error_redirect(op.authorize(params), client.redirect_uris[0], "invalid_request", params["state"], op.url)


# --- prompt (OIDC Core §3.1.2.1) -------------------------------------------------------------------

def test_prompt_values_supported_is_truthful(live_server):
    meta = requests.get(f"{live_server.url}/.well-known/openid-configuration", timeout=10).json()
    assert meta["prompt_values_supported"] == ["none", "login"]


@pytest.mark.parametrize("prompt, error", [
    ("consent", "consent_required"),
    ("login consent", "consent_required"),
    ("select_account", "account_selection_required"),
    ("create", "invalid_request"),
])
def test_core_3_1_2_1_prompt_the_provider_cannot_honour(op, rp, prompt, error):
    client, _ = rp
    params, _ = auth_params(client, prompt=prompt)
    assert_error_redirect(op.authorize(params), client.redirect_uris[0], error, params["state"], op.url)


# --- RFC 8414 -----------------------------------------------------------------------------------

def test_rfc8414_3_metadata_document(live_server):
    from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

    r = requests.get(f"{live_server.url}/.well-known/oauth-authorization-server", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    oidc = requests.get(f"{live_server.url}/.well-known/openid-configuration", timeout=10)
    assert r.content == oidc.content and r.headers["ETag"] == oidc.headers["ETag"]
    meta = r.json()
    assert meta["issuer"] == live_server.url  # §3.3: identical to the issuer it is fetched for
    AuthorizationServerMetadata(meta).validate()
    assert r.headers["Cache-Control"].startswith("public")
    again = requests.get(f"{live_server.url}/.well-known/oauth-authorization-server",
                         headers={"If-None-Match": r.headers["ETag"]}, timeout=10)
    assert again.status_code == 304 and again.content == b""


# --- idp clients update -----------------------------------------------------------------------------

def test_clients_update_changes_every_setting_in_place(cli, make_client):
    client, secret = make_client()
    client_id = client.client_id
    r = cli("clients", "update", client_id, "--name", "Nouveau nom",
            "--redirect-uri", "https://rp.exemple.fr/a", "--redirect-uri", "https://rp.exemple.fr/b",
            "--post-logout-redirect-uri", "https://rp.exemple.fr/bye", "--scope", "openid email",
            "--alg", "ES256", "--client-credentials", "--pkce", "optional", "--cors", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["client_id"] == client_id and data["client_secret"] is None
    client = db.session.get(Client, client.id)
    assert client.name == "Nouveau nom"
    assert client.redirect_uris == ["https://rp.exemple.fr/a", "https://rp.exemple.fr/b"]
    assert client.post_logout_redirect_uris == ["https://rp.exemple.fr/bye"]
    assert client.scope == "openid email"
    assert client.id_token_signed_response_alg == "ES256"
    assert client.grant_types == ["authorization_code", "refresh_token", "client_credentials"]
    assert client.pkce_required is False and client.cors is True
    assert client.check_client_secret(secret)  # unchanged

    r = cli("clients", "update", client_id, "--no-post-logout-redirect-uris", "--alg", "default",
            "--no-client-credentials", "--pkce", "required", "--no-cors")
    assert r.exit_code == 0, r.output
    assert "updated" in r.output
    client = db.session.get(Client, client.id)
    assert client.post_logout_redirect_uris == [] and client.id_token_signed_response_alg is None
    assert client.grant_types == ["authorization_code", "refresh_token"]
    assert client.pkce_required is True and client.cors is False


@pytest.mark.parametrize("args, message", [
    ((), "Nothing to change"),
    (("--redirect-uri", "http://rp.exemple.fr/cb"), "only https"),
    (("--scope", "profile"), "must include openid"),
    (("--name", " "), "must not be empty"),
    (("--overlap", "1d"), "--overlap goes with --rotate-secret"),
    (("--rotate-secret", "--overlap", "soon"), "must be a duration"),
])
def test_clients_update_refuses(cli, make_client, args, message):
    client, secret = make_client()
    r = cli("clients", "update", client.client_id, *args)
    assert r.exit_code != 0 and message in r.output, r.output
    assert db.session.get(Client, client.id).check_client_secret(secret)


def test_clients_update_unknown_and_public_client_limits(cli, make_client):
    assert "No client nope" in cli("clients", "update", "nope", "--name", "x").output
    client, _ = make_client(public=True)
    assert "public client has no secret" in cli("clients", "update", client.client_id, "--rotate-secret").output
    assert "always allowed" in cli("clients", "update", client.client_id, "--no-cors").output


class TestSecretRotation:
    """``--rotate-secret [--overlap]``: the new secret printed once, the previous one accepted until the overlap ends."""

    @pytest.fixture
    def settings(self):
        return {"CLIENT_CACHE_SECONDS": 0}  # the rotation seen at once (otherwise within 5 s)

    @staticmethod
    def client_credentials(live_server, client_id, secret) -> int:
        return requests.post(f"{live_server.url}/token", data={"grant_type": "client_credentials", "scope": "openid"},
                             auth=(client_id, secret), timeout=10).status_code

    def test_old_secret_works_during_the_overlap_and_is_refused_after(self, cli, live_server, make_client):
        client, old = make_client(grant_types=("authorization_code", "client_credentials"))
        r = cli("clients", "update", client.client_id, "--rotate-secret", "--overlap", "2s")
        assert r.exit_code == 0, r.output
        new = [line.split(":", 1)[1].strip() for line in r.stdout.splitlines() if line.startswith("client_secret:")][0]
        assert r.output.count(new) == 1 and "only this once" in r.stderr and "keeps working until" in r.stderr
        stored = db.session.get(Client, client.id)
        assert new not in (stored.client_secret_hash, stored.previous_secret_hash)  # keyed hashes only
        assert stored.previous_secret_hash and stored.previous_secret_hash != stored.client_secret_hash

        assert self.client_credentials(live_server, client.client_id, new) == 200
        assert self.client_credentials(live_server, client.client_id, old) == 200
        time.sleep(2.2)
        assert self.client_credentials(live_server, client.client_id, old) == 401
        assert self.client_credentials(live_server, client.client_id, new) == 200

    def test_default_overlap_is_the_setting_and_zero_ends_the_old_secret_at_once(self, cli, live_server, app,
                                                                                  make_client):
        client, old = make_client(grant_types=("authorization_code", "client_credentials"))
        before = time.time()
        r = cli("clients", "update", client.client_id, "--rotate-secret")
        assert r.exit_code == 0, r.output
        stored = db.session.get(Client, client.id)
        overlap = stored.previous_secret_expires_at.timestamp() - before
        assert abs(overlap - app.config["IDP_CLIENT_SECRET_OVERLAP"]) < 60
        second = [line.split(":", 1)[1].strip() for line in r.stdout.splitlines() if line.startswith("client_secret:")][0]
        assert self.client_credentials(live_server, client.client_id, old) == 200

        r = cli("clients", "update", client.client_id, "--rotate-secret", "--overlap", "0")
        third = [line.split(":", 1)[1].strip() for line in r.stdout.splitlines() if line.startswith("client_secret:")][0]
        assert "no longer works" in r.stderr
        for refused in (old, second):
            assert self.client_credentials(live_server, client.client_id, refused) == 401
        assert self.client_credentials(live_server, client.client_id, third) == 200
