"""The harness's TCP proxy with a delay (the benchmarks' ``--rtt-ms``): a round trip through it
pays the delay both ways, in order, and chunks in flight do not wait for each other."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from devstack.proxy import TcpProxy

RTT_SECONDS = 0.040


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture
def delayed(echo_port: int) -> Iterator[TcpProxy]:
    proxy = TcpProxy(echo_port, delay_seconds=RTT_SECONDS / 2).start()
    yield proxy
    proxy.close()


def receive(sock: socket.socket, size: int) -> bytes:
    """Block until ``size`` bytes have come back (the echo is the synchronisation)."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


def round_trip(port: int, message: bytes = b"ping") -> float:
    """Seconds from sending ``message`` on an open connection to its echo's last byte."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"warm")
        receive(sock, 4)  # the connection is set up end to end before timing
        began = time.monotonic()
        sock.sendall(message)
        assert receive(sock, len(message)) == message
        return time.monotonic() - began


def test_a_round_trip_through_the_delayed_proxy_pays_the_rtt(
    echo_port: int, delayed: TcpProxy
) -> None:
    proxied = [round_trip(delayed.port) for _ in range(3)]
    direct = min(round_trip(echo_port) for _ in range(3))
    assert min(proxied) >= RTT_SECONDS, proxied
    assert direct < RTT_SECONDS, direct


def test_chunks_keep_their_order_and_travel_together(delayed: TcpProxy) -> None:
    """50 messages sent back to back come back in order, after about one round trip, not
    50: reading goes on while earlier chunks wait for their delay."""
    messages = [f"message {n:03d};".encode() for n in range(50)]
    expected = b"".join(messages)
    with socket.create_connection(("127.0.0.1", delayed.port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        began = time.monotonic()
        for message in messages:
            sock.sendall(message)
        assert receive(sock, len(expected)) == expected
        elapsed = time.monotonic() - began
    assert RTT_SECONDS <= elapsed < 10 * RTT_SECONDS, elapsed
