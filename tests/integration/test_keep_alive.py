"""A connection a client keeps open between calls is still served after it sat idle.

Clients keep idle connections longer than uvicorn's default of 5 s (urllib3 for as long as it
likes, Go 90 s, httpx 5 s: the same moment, so a reuse races the server's close) and send the
next call on one the server is closing: "Server disconnected without sending a response", a
call lost, and for a POST one the client must not simply resend. The service keeps them longer
than such clients do.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.support.server import ServiceProcess

pytestmark = pytest.mark.integration

# Longer than httpx's 5 s and Node's 4 s, shorter than the service's keep-alive.
IDLE_S = 8


def _get_health(sock: socket.socket, port: int) -> bytes:
    """The status line and headers of one GET /health on ``sock``, its body read to the end;
    what arrived before the service closed the connection, if it did."""
    sock.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            return received
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head


def test_a_connection_idle_longer_than_clients_keep_theirs_is_still_served(
    service: ServiceProcess,
) -> None:
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
        assert _get_health(sock, service.port).startswith(b"HTTP/1.1 200")
        # The idling is what is tested: there is nothing to poll for.
        time.sleep(IDLE_S)
        again = _get_health(sock, service.port)
        assert again.startswith(b"HTTP/1.1 200"), again or "the service closed the connection"
