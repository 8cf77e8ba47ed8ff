"""Discovery and JWKS answered before Flask once made (public_document.Shortcut): the same answer either way.

The shortcut only saves work: every header, the body, ``ETag``/304 and HEAD must be
what the Flask view gives, and whatever the process does not hold (the first
request, keys whose cache period ended, another method) must reach Flask.
"""

from __future__ import annotations

import time

import pytest

from idp.oidc import keys
from idp.oidc.endpoints.public_document import Shortcut

PATHS = ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/jwks.json"]


@pytest.fixture
def reached_flask(app):
    """Counts the requests that went past the shortcut into Flask."""
    shortcut = app.wsgi_app
    while not isinstance(shortcut, Shortcut):  # inside the request recorder (idp.ops) and ProxyFix
        shortcut = shortcut.wsgi_app if hasattr(shortcut, "wsgi_app") else shortcut.app
    inner = shortcut.wsgi_app
    calls = []

    def counting(environ, start_response):
        calls.append(environ["PATH_INFO"])
        return inner(environ, start_response)

    shortcut.wsgi_app = counting
    yield calls
    shortcut.wsgi_app = inner


def _forget_documents(app):
    app.extensions.pop("idp_discovery", None)
    app.extensions.pop("idp_keys", None)


def _headers(response) -> dict:
    # X-Request-ID: each request's own (idp.ops.recorder), the shortcut's too.
    return {name: value for name, value in response.headers.items() if name not in ("Date", "Server", "X-Request-ID")}


@pytest.mark.parametrize("path", PATHS)
def test_shortcut_answers_exactly_as_flask(app, web, reached_flask, path):
    _forget_documents(app)
    made = web.get(path)  # made by the Flask view
    held = web.get(path)  # answered by the shortcut
    assert reached_flask == [path]
    assert held.status_code == made.status_code == 200
    assert held.data == made.data and held.get_json()
    assert _headers(held) == _headers(made)
    assert held.headers["Access-Control-Allow-Origin"] == "*"
    assert held.headers["X-Frame-Options"] == "DENY" and "no-store" not in held.headers["Cache-Control"]


@pytest.mark.parametrize("path", PATHS)
def test_shortcut_304_and_head_as_flask(app, web, reached_flask, path):
    _forget_documents(app)
    etag = web.get(path).headers["ETag"]
    _forget_documents(app)
    flask_304 = web.get(path, headers={"If-None-Match": etag})
    held_304 = web.get(path, headers={"If-None-Match": f'W/{etag}, "other"'})
    assert flask_304.status_code == held_304.status_code == 304
    assert held_304.data == b"" and held_304.headers["ETag"] == etag
    assert _headers(held_304) == _headers(flask_304)
    _forget_documents(app)
    flask_head = web.head(path)
    held_head = web.head(path)
    assert flask_head.status_code == held_head.status_code == 200 and held_head.data == b""
    assert _headers(held_head) == _headers(flask_head)
    assert reached_flask == [path, path, path]  # each made by Flask once, then held


def test_other_methods_and_paths_reach_flask(app, web, reached_flask):
    web.get("/jwks.json")
    assert web.post("/jwks.json").status_code == 405
    assert web.get("/jwks.json/").status_code == 404
    assert reached_flask == ["/jwks.json", "/jwks.json", "/jwks.json/"]


@pytest.mark.parametrize("settings", [{"KEY_CACHE_SECONDS": 1}])
def test_jwks_past_its_cache_period_is_read_again_by_flask(app, web, reached_flask, settings):
    """A key rotated on another host is published here within IDP_KEY_CACHE_SECONDS, shortcut or not."""
    from idp.extensions import db
    from idp.models import SigningKey

    keys.forget()
    before = {k["kid"] for k in web.get("/jwks.json").get_json()["keys"]}
    assert {k["kid"] for k in web.get("/jwks.json").get_json()["keys"]} == before
    assert reached_flask == ["/jwks.json"]
    with db.engine.begin() as conn:  # another host removes a retired key... here: all but one per alg
        kept = conn.execute(SigningKey.__table__.select().where(SigningKey.status == "active")).all()
        conn.execute(SigningKey.__table__.delete().where(SigningKey.status != "active"))
    time.sleep(1.1)
    after = {k["kid"] for k in web.get("/jwks.json").get_json()["keys"]}
    assert after == {row.kid for row in kept} != before
    assert reached_flask == ["/jwks.json", "/jwks.json"]
