"""``idp run``: the development server's log shows paths, never query strings.

Authorization requests carry ``login_hint`` (a NIR), logout requests ``id_token_hint``;
like the production server's access log (``idp serve``), werkzeug's request log leaves them out.
"""

from __future__ import annotations

import logging
import socket
import threading

import pytest
import requests
from werkzeug.serving import make_server

from idp.cli.admin import PathOnlyRequestHandler

NIR = "285059912345678"
HINT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzZWNyZXQifQ.c2lnbmF0dXJl"


def hello(environ, start_response):
    start_response("302 Found", [("Location", "/connexion"), ("Content-Type", "text/plain")])
    return [b""]


@pytest.fixture
def served():
    """A werkzeug server with the handler of ``idp run``, on a free port."""
    server = make_server("127.0.0.1", 0, hello, threaded=True, request_handler=PathOnlyRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", server.server_port
    server.shutdown()
    thread.join(timeout=10)


def werkzeug_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "werkzeug"]


def test_the_request_log_shows_the_path_without_the_query_string(served, caplog):
    url, _ = served
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        r = requests.get(f"{url}/authorize", params={"login_hint": NIR, "client_id": "rp", "state": "s"},
                         allow_redirects=False, timeout=10)
        assert r.status_code == 302
        r = requests.get(f"{url}/logout?id_token_hint={HINT}&state=s", allow_redirects=False, timeout=10)
        assert r.status_code == 302
    lines = werkzeug_lines(caplog)
    text = "\n".join(lines)
    assert any("GET /authorize HTTP/1.1" in line and " 302 " in line for line in lines), text
    assert any("GET /logout HTTP/1.1" in line for line in lines), text
    for secret in (NIR, HINT, "login_hint", "id_token_hint", "?"):
        assert secret not in text


def test_a_malformed_request_line_is_logged_without_its_query_string(served, caplog):
    """The error about a bad request line quotes it: its query string is left out too."""
    _, port = served
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(f"GET /authorize?login_hint={NIR} de-trop HTTP/1.1\r\n\r\n".encode())
            answer = raw.recv(4096)
    assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0], answer[:200]
    text = "\n".join(werkzeug_lines(caplog))
    assert "Bad request syntax ('GET /authorize de-trop HTTP/1.1')" in text, text
    assert NIR not in text and "login_hint" not in text


def test_idp_run_serves_with_that_handler(app, monkeypatch):
    """``idp run`` hands the handler to werkzeug's run_simple."""
    import werkzeug.serving

    seen = {}
    monkeypatch.setattr(werkzeug.serving, "run_simple",
                        lambda host, port, application, **kwargs: seen.update(host=host, port=port, **kwargs))
    result = app.test_cli_runner().invoke(args=["run", "--port", "5099"])
    assert result.exit_code == 0, result.output
    assert seen["request_handler"] is PathOnlyRequestHandler
    assert (seen["host"], seen["port"], seen["threaded"]) == ("127.0.0.1", 5099, True)
