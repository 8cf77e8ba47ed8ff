"""The back channel's client cache (IDP_CLIENT_CACHE_SECONDS): a removed client is refused
everywhere within that delay, and never with a 500 meanwhile."""

from __future__ import annotations

import base64
import time

import pytest
from sqlalchemy import delete

from idp.extensions import db
from idp.models import Client, Token


def basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def client_credentials(web, client_id, secret):
    return web.post("/token", headers=basic(client_id, secret), data={"grant_type": "client_credentials"})


@pytest.mark.parametrize("settings", [{"CLIENT_CACHE_SECONDS": 1}], ids=["cache-1s"])
def test_a_client_removed_on_another_host_is_refused_within_the_cache_delay(web, make_client):
    service, secret = make_client(grant_types=("client_credentials",), scope="openid")
    client_id, pk = service.client_id, service.id
    assert client_credentials(web, client_id, secret).status_code == 200  # now in this process's cache
    assert client_credentials(web, client_id, "wrong").status_code == 401  # the secret is checked every time

    # Another host removes it (the CLI deletes its tokens, then the client).
    db.session.execute(delete(Token).where(Token.client_id == pk))
    db.session.execute(delete(Client).where(Client.id == pk))
    db.session.commit()
    db.session.remove()

    # Within the delay this process still knows the client: the token cannot be stored, the answer
    # is an OAuth error (never a 500), and the client is forgotten at once.
    r = client_credentials(web, client_id, secret)
    assert r.status_code == 401 and r.json["error"] == "invalid_client", (r.status_code, r.get_data(as_text=True))
    r = client_credentials(web, client_id, secret)
    assert r.status_code == 401 and r.json["error"] == "invalid_client"


@pytest.mark.parametrize("settings", [{"CLIENT_CACHE_SECONDS": 1}], ids=["cache-1s"])
def test_the_cache_expires(web, make_client):
    service, secret = make_client(grant_types=("client_credentials",), scope="openid")
    assert client_credentials(web, service.client_id, secret).status_code == 200
    # A change that leaves the row in place (here, its grant types): seen once the delay has passed.
    service.grant_types = ["authorization_code"]
    db.session.commit()
    time.sleep(1.1)
    r = client_credentials(web, service.client_id, secret)
    assert r.status_code in (400, 401) and r.json["error"] == "unauthorized_client", r.json


@pytest.mark.parametrize("settings", [{"CLIENT_CACHE_SECONDS": 0}], ids=["no-cache"])
def test_no_cache(web, make_client):
    service, secret = make_client(grant_types=("client_credentials",), scope="openid")
    assert client_credentials(web, service.client_id, secret).status_code == 200
    service.grant_types = ["authorization_code"]
    db.session.commit()
    assert client_credentials(web, service.client_id, secret).json["error"] == "unauthorized_client"
