"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, collecting what it receives.

A pytest plugin: load it with ``pytest_plugins = ["smtp"]`` (in ``tests/conftest.py``
for the whole suite, or in one test module). Then point the provider at it::

    @pytest.fixture
    def settings(smtp_server):
        return {"MAIL_URL": smtp_server.url}

(``smtp_server.settings`` is that dict), and read mails back::

    mail = smtp_server.wait_for("jeanne.martin@exemple.fr")
    assert "123456" in mail.text_body()
"""

from __future__ import annotations

import socket
import threading
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from aiosmtpd.controller import Controller


class ReceivedMail(EmailMessage):
    """A parsed message, with the envelope it came with and accessors for its bodies."""

    envelope_from: str = ""
    envelope_to: list[str] = []
    raw: bytes = b""  # the bytes as received, to check the wire format

    def text_body(self) -> str | None:
        part = self.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None and part.get_content_subtype() == "plain" else None

    def html_body(self) -> str | None:
        part = self.get_body(preferencelist=("html",))
        return part.get_content() if part is not None and part.get_content_subtype() == "html" else None

    def recipients(self) -> set[str]:
        addresses = {a.lower() for a in self.envelope_to}
        for header in ("To", "Cc"):
            if self[header] is not None:
                addresses |= {a.addr_spec.lower() for a in self[header].addresses}
        return addresses


PARSE_POLICY = policy.default.clone(message_factory=ReceivedMail)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Collector:
    """aiosmtpd handler: accept everything, keep every message parsed."""

    def __init__(self, server: "SMTPServer"):
        self.server = server

    async def handle_DATA(self, smtp, session, envelope):
        raw = envelope.original_content or envelope.content
        # Parsed with "\n" line ends, so that bodies compare with what the code wrote.
        mail = BytesParser(policy=PARSE_POLICY).parsebytes(raw.replace(b"\r\n", b"\n"))
        mail.raw = raw
        mail.envelope_from = envelope.mail_from
        mail.envelope_to = list(envelope.rcpt_tos)
        self.server._add(mail)
        return "250 Message accepted for delivery"


class SMTPServer:
    """The running server: its address, what it received, and ways to wait for mail."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, **smtp_kwargs):
        self.host = host
        self.port = port or free_port()
        self.messages: list[ReceivedMail] = []
        self._cond = threading.Condition()
        self._controller = Controller(_Collector(self), hostname=host, port=self.port, **smtp_kwargs)

    @property
    def url(self) -> str:
        """``IDP_MAIL_URL`` for this server."""
        return f"smtp://{self.host}:{self.port}?timeout=5"

    @property
    def settings(self) -> dict:
        """Setting overrides for the ``settings`` fixture of conftest."""
        return {"MAIL_URL": self.url}

    def start(self) -> "SMTPServer":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def _add(self, mail: ReceivedMail) -> None:
        with self._cond:
            self.messages.append(mail)
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()

    def to(self, address: str) -> list[ReceivedMail]:
        """Every message received for ``address``, oldest first."""
        address = address.lower()
        with self._cond:
            return [m for m in self.messages if address in m.recipients()]

    def wait_for(self, to: str, timeout: float = 5, after: int = 0) -> ReceivedMail:
        """The latest message for ``to``, waiting up to ``timeout`` seconds for one.

        ``after``: ignore the first ``after`` messages for that address (to wait for a new one).
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for m in self.messages if to.lower() in m.recipients()]
                if len(found) > after:
                    return found[-1]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no mail for {to} within {timeout} s ({len(self.messages)} received in all)")
                self._cond.wait(remaining)


@pytest.fixture
def make_smtp_server():
    """Start more servers, with aiosmtpd options (``authenticator=...``); all stopped after the test."""
    started: list[SMTPServer] = []

    def _make(**smtp_kwargs) -> SMTPServer:
        server = SMTPServer(**smtp_kwargs).start()
        started.append(server)
        return server

    yield _make
    for server in started:
        server.stop()


@pytest.fixture
def smtp_server(make_smtp_server):
    """A real SMTP server on 127.0.0.1 and a free port, for one test."""
    return make_smtp_server()
