"""A TCP proxy the tests can cut, to put the network between the provider and PostgreSQL.

A pytest plugin (``pytest_plugins`` of ``conftest``). :class:`TCPProxy` listens on
127.0.0.1 and forwards every connection to a target address. :meth:`TCPProxy.stop`
is an outage: the listening socket is closed (a new connection is refused) and
every open connection is dropped, both ways. :meth:`TCPProxy.start` listens again
on the same port, so that the served provider, which keeps its database URL,
finds the database back without a restart.

One thread forwards every connection (a selector); it is enough for the few
connections of a test.
"""

from __future__ import annotations

import selectors
import socket
import threading

import pytest


class TCPProxy:
    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port: int | None = None  # chosen by the first start, kept after
        self.accepted = 0  # connections accepted and forwarded, over every start
        self.upstream_ports: set[int] = set()  # local ports of the connections to the target (as it sees them)
        self._thread: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> "TCPProxy":
        assert not self.running, "the proxy is already running"
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port or 0))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._wake = socket.socketpair()
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, args=(listener,), name=f"tcp-proxy-{self.port}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Refuse new connections and drop every open one (the loop closes them before it returns)."""
        if not self.running:
            return
        self._stopping = True
        self._wake[1].send(b"x")
        self._thread.join(10)
        assert not self._thread.is_alive(), "the proxy did not stop"
        for s in self._wake:
            s.close()
        self._thread = self._wake = None

    # --- the forwarding loop ------------------------------------------------------------------
    def _serve(self, listener: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ, "accept")
        selector.register(self._wake[0], selectors.EVENT_READ, "wake")
        peers: dict[socket.socket, socket.socket] = {}
        try:
            while not self._stopping:
                for key, _ in selector.select(timeout=1):
                    if key.data == "accept":
                        self._accept(listener, selector, peers)
                    elif key.data == "forward":
                        self._forward(key.fileobj, selector, peers)
        finally:
            selector.close()
            listener.close()
            for s in list(peers):
                _drop(s)

    def _accept(self, listener, selector, peers) -> None:
        client, _ = listener.accept()
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            _drop(client)
            return
        upstream.settimeout(None)
        self.upstream_ports.add(upstream.getsockname()[1])
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            selector.register(s, selectors.EVENT_READ, "forward")
        peers[client], peers[upstream] = upstream, client
        self.accepted += 1

    def _forward(self, source, selector, peers) -> None:
        target = peers.get(source)
        if target is None:
            return
        try:
            data = source.recv(65536)
            if data:
                target.sendall(data)
                return
        except OSError:
            pass
        # One side closed: close both (a TCP proxy has no half-open state worth keeping here).
        for s in (source, target):
            selector.unregister(s)
            peers.pop(s, None)
            _drop(s)


def _drop(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


@pytest.fixture
def tcp_proxy():
    """``tcp_proxy(host, port)``: a started :class:`TCPProxy` to that address, stopped after the test."""
    made: list[TCPProxy] = []

    def _make(host: str, port: int) -> TCPProxy:
        proxy = TCPProxy(host, port).start()
        made.append(proxy)
        return proxy

    yield _make
    for proxy in made:
        proxy.stop()
