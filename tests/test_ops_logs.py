"""Issue 10, « Logs »: one JSON line per request, application events in the same format, the request id.

In-process (Flask's test client through the whole WSGI stack, the recorder being its
outermost layer): the lines are read from the handler the app installs on the root
logger (:mod:`idp.ops.logs`), its stream swapped for the test's buffer. The whole
journey on the real server, its logs scanned for every secret, is
tests/test_promise_no_secret_in_logs.py.
"""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from idp.ops import logs

NIR = "285059912345678"
REQUEST_FIELDS = {"time", "level", "logger", "event", "request_id", "method", "route", "status", "duration_ms",
                  "client"}
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def settings():
    return {"LOG_FORMAT": "json"}


@pytest.fixture
def lines(app):
    """What the app's root handler writes during the test, one parsed JSON object per line."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == logs.HANDLER_NAME)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)

    def read() -> list[dict]:
        text = buffer.getvalue()
        return [json.loads(line) for line in text.splitlines()]  # every line is one JSON object

    read.text = buffer.getvalue
    yield read
    handler.setStream(previous)


def request_lines(read) -> list[dict]:
    return [line for line in read() if line["logger"] == logs.REQUEST_LOGGER]


def test_a_request_line_is_one_json_object_naming_the_route_never_the_path_or_the_query_string(app, web, lines):
    r = web.get(f"/authorize?login_hint={NIR}&client_id=inconnu&state=s")
    assert r.status_code == 400
    r = web.get("/mot-de-passe-oublie/captcha/poignee-quelconque/image.png?x=1")
    web.get(f"/nulle-part/{NIR}?login_hint={NIR}")
    found = request_lines(lines)
    assert [(line["method"], line["route"]) for line in found] == [
        ("GET", "/authorize"), ("GET", "/mot-de-passe-oublie/captcha/<handle>/image.png"), ("GET", "unmatched")]
    for line in found:
        assert set(line) == REQUEST_FIELDS, line
        assert line["event"] == "request" and line["level"] == "info"
        assert isinstance(line["status"], int) and isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
        assert line["client"] == "127.0.0.1"
        assert line["time"].endswith("Z")
    assert [line["status"] for line in found] == [400, r.status_code, 404]
    text = lines.text()
    for absent in (NIR, "login_hint", "?", "poignee-quelconque", "nulle-part"):
        assert absent not in text


def test_the_public_documents_answered_before_flask_get_their_line_too(app, web, lines):
    for _ in range(2):  # the first one makes the document in Flask, the second is the shortcut's
        assert web.get("/.well-known/openid-configuration").status_code == 200
        assert web.get("/jwks.json").status_code == 200
    routes = [line["route"] for line in request_lines(lines)]
    assert routes == ["/.well-known/openid-configuration", "/jwks.json"] * 2


def test_probes_that_answer_well_write_no_request_line(app, web, lines):
    """A load balancer asks every second: /healthz and /readyz are counted, logged only when they fail."""
    assert web.get("/healthz").status_code == 200
    assert web.get("/readyz").status_code == 200
    assert request_lines(lines) == []
    app.extensions.pop("idp_readyz", None)
    app.config["IDP_MAIL_URL"] = ""  # readiness fails: no mail transport
    web.get("/readyz")
    failed = [line for line in request_lines(lines) if line["route"] == "/readyz"]
    assert failed and failed[-1]["status"] == 503


def test_an_application_event_during_a_request_carries_its_request_id(app, web, lines):
    """Any ``logging`` call made while a request runs: the event in JSON, with the id of that request."""

    @app.get("/test-only/event")
    def event():
        logging.getLogger("idp.test").warning("Something of note for %s", "client-x")
        return "ok"

    r = web.get("/test-only/event")
    event_line, request_line = lines()
    assert event_line == {"event": "Something of note for client-x", "level": "warning", "logger": "idp.test",
                          "request_id": r.headers["X-Request-ID"], "time": event_line["time"]}
    assert request_line["request_id"] == r.headers["X-Request-ID"] and request_line["route"] == "/test-only/event"
    logging.getLogger("idp.test").warning("Outside any request")
    assert "request_id" not in lines()[-1]


def test_without_a_trusted_proxy_x_request_id_is_ignored_and_one_is_generated(app, web, lines):
    first = web.get("/jwks.json", headers={"X-Request-ID": "chosen-by-the-client"})
    second = web.get("/jwks.json", headers={"X-Request-ID": "chosen-by-the-client"})
    ids = [first.headers["X-Request-ID"], second.headers["X-Request-ID"]]
    assert all(GENERATED_ID.fullmatch(i) for i in ids) and ids[0] != ids[1]
    assert [line["request_id"] for line in request_lines(lines)] == ids
    assert "chosen-by-the-client" not in lines.text()


@pytest.mark.parametrize("settings", [{"LOG_FORMAT": "json", "PROXY_COUNT": 1}])
def test_behind_a_trusted_proxy_its_x_request_id_is_kept_and_returned(app, web, lines):
    r = web.get("/authorize", headers={"X-Request-ID": "nginx-7f3a:01.b_c", "X-Forwarded-For": "203.0.113.9"})
    assert r.headers["X-Request-ID"] == "nginx-7f3a:01.b_c"
    [line] = request_lines(lines)
    assert line["request_id"] == "nginx-7f3a:01.b_c"
    assert line["client"] == "203.0.113.9", "the client's address, after IDP_PROXY_COUNT"


@pytest.mark.parametrize("settings", [{"LOG_FORMAT": "json", "PROXY_COUNT": 1}])
@pytest.mark.parametrize("bad", ["", "a b", "x" * 65, 'a"b', "a\\nb", "é", "<script>", "id;rm", "a\tb"])
def test_a_malformed_x_request_id_is_replaced(app, web, lines, bad):
    r = web.get("/jwks.json", headers={"X-Request-ID": bad})
    rid = r.headers["X-Request-ID"]
    assert GENERATED_ID.fullmatch(rid)
    assert [line["request_id"] for line in request_lines(lines)] == [rid]


@pytest.mark.parametrize("settings", [{"LOG_FORMAT": "text"}])
def test_text_mode_has_no_request_line_the_servers_access_log_has_one(app, web):
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == logs.HANDLER_NAME)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        r = web.get("/jwks.json")
        logging.getLogger("idp.test").warning("An event")
    finally:
        handler.setStream(previous)
    assert r.headers["X-Request-ID"]
    assert buffer.getvalue().splitlines() == [buffer.getvalue().splitlines()[0]]
    assert buffer.getvalue().rstrip().endswith("WARNING in test_ops_logs: An event")


def test_text_mode_keeps_flasks_format():
    from idp.ops.logs import formatter

    record = logging.LogRecord("idp.errors", logging.WARNING, "/x/errors.py", 1, "Database unavailable (%s)",
                               ("psycopg.OperationalError: gone",), None)
    assert "WARNING in errors: Database unavailable (psycopg.OperationalError: gone)" in formatter("text").format(record)
    with pytest.raises(ValueError):
        formatter("xml")
