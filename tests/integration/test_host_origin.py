"""The Host and Origin guard on the real service, from raw HTTP and WebSocket clients.

Every route and WebSocket is refused for a Host the service is not served as (DNS rebinding)
and for a browser Origin it does not allow (cross-site requests); a plain JSON client like the
control plane's, with no Origin, works as before. test_browser_guard.py does the same from a
real browser.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.typing import Origin

from tests.integration.conftest import agent_body, session_objects
from tests.integration.test_prometheus import scrape, total
from tests.support.engine import Engine
from tests.support.server import ServiceProcess

pytestmark = pytest.mark.integration

BAD_HOSTS = [
    "evil.example",
    "attacker.example:3200",
    "localhost.evil.example",
    "127.0.0.1.nip.io",
    "127.0.0.1.evil.example:3200",
    "evil.localhost",
    "localhost.",
    "127.0.0.1@evil.example",
    "127.1",
    "0x7f.0.0.1",
    "2130706433",
    "[::ffff:7f00:1]",
    "localhost:99999",
    "localhost:x",
    "",
]
GOOD_HOSTS = ["localhost", "LOCALHOST:3200", "127.0.0.1", "127.0.0.2:1", "[::1]:3200", "[::1]"]
BAD_ORIGINS = [
    "http://evil.example",
    "http://127.0.0.1:1",  # another port of the same host: another origin
    "http://localhost:5173",
    "null",
    "file://",
    "http://127.0.0.1.nip.io",
]


def raw_request(proc: ServiceProcess, head: bytes) -> tuple[int, bytes]:
    """Send a request exactly as written (Host and target included); the status and body."""
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def ws_close_of(proc: ServiceProcess, host: str, path: str = "/ws") -> tuple[int, str]:
    """Open a WebSocket with this Host; the close code and reason the server sends."""
    head = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
        sock.sendall(head)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(4096)
        assert data.startswith(b"HTTP/1.1 101"), data
        frame = data.partition(b"\r\n\r\n")[2]
        while len(frame) < 2 or len(frame) < 2 + frame[1]:
            frame += sock.recv(4096)
    opcode, length = frame[0] & 0x0F, frame[1] & 0x7F
    assert opcode == 0x8, f"a frame other than close arrived: {frame!r}"
    payload = frame[2 : 2 + length]
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode()


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_http_with_a_host_the_service_is_not_served_as_is_refused(
    service: ServiceProcess, engine: Engine, host: str
) -> None:
    before = session_objects(engine)
    body = b'{"name": "x", "type": "custom"}'
    status, answer = raw_request(
        service,
        b"POST /agents HTTP/1.1\r\nHost: " + host.encode() + b"\r\nContent-Type: application/json"
        b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body,
    )
    assert status == 403 and b'"HOST_NOT_ALLOWED"' in answer, (host, answer)
    assert session_objects(engine) == before


@pytest.mark.parametrize("path", ["/health", "/agents", "/api/agents", "/metrics", "/docs"])
def test_every_route_checks_the_host(service: ServiceProcess, path: str) -> None:
    response = httpx.get(service.url + path, headers={"Host": "rebound.example"}, timeout=10)
    assert response.status_code == 403
    assert response.json()["code"] == "HOST_NOT_ALLOWED"
    assert "access-control-allow-origin" not in response.headers


def test_a_request_without_any_host_is_refused(service: ServiceProcess) -> None:
    status, answer = raw_request(service, b"GET /agents HTTP/1.0\r\n\r\n")
    assert status == 403 and b"HOST_NOT_ALLOWED" in answer


def test_two_host_headers_are_refused(service: ServiceProcess) -> None:
    status, _ = raw_request(
        service, b"GET /agents HTTP/1.0\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n"
    )
    assert status in (400, 403)


def test_an_absolute_form_target_names_the_host_that_is_checked(service: ServiceProcess) -> None:
    status, answer = raw_request(
        service,
        b"GET http://evil.example/agents HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    assert status == 403 and b"HOST_NOT_ALLOWED" in answer
    status, answer = raw_request(
        service,
        f"GET http://127.0.0.1:{service.port}/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Connection: close\r\n\r\n".encode(),
    )
    assert status == 200, answer


@pytest.mark.parametrize("host", GOOD_HOSTS)
def test_loopback_names_with_or_without_a_port_are_served(
    service: ServiceProcess, host: str
) -> None:
    response = httpx.get(service.url + "/agents", headers={"Host": host}, timeout=10)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ["/ws", "/ws/events", "/ws/agents/agent-x/terminal"])
@pytest.mark.parametrize("host", ["evil.example:3200", "127.0.0.1.nip.io", ""])
def test_websockets_with_a_foreign_host_are_closed_with_1008(
    service: ServiceProcess, host: str, path: str
) -> None:
    assert ws_close_of(service, host, path) == (1008, "HOST_NOT_ALLOWED")


@pytest.mark.parametrize("origin", BAD_ORIGINS)
def test_state_changing_requests_from_another_origin_are_refused(
    service: ServiceProcess, engine: Engine, origin: str
) -> None:
    before = session_objects(engine)
    for content_type in ("application/json", "text/plain", "application/x-www-form-urlencoded"):
        response = httpx.post(
            service.url + "/agents",
            content=httpx.Request("POST", "/", json=agent_body()).content,
            headers={"Origin": origin, "Content-Type": content_type},
            timeout=30,
        )
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "ORIGIN_NOT_ALLOWED"
        assert "access-control-allow-origin" not in response.headers
    assert session_objects(engine) == before


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_requests_another_site_made_without_an_origin_are_refused(
    service: ServiceProcess, site: str
) -> None:
    # A no-cors GET (an <img>, a <script>) carries no Origin; Sec-Fetch-Site still says who.
    for method, path in (("GET", "/agents"), ("POST", "/gc")):
        response = httpx.request(
            method, service.url + path, headers={"Sec-Fetch-Site": site}, timeout=30
        )
        assert response.status_code == 403, (method, path)
        assert response.json()["code"] == "ORIGIN_NOT_ALLOWED"


def test_the_services_own_origin_is_served(service: ServiceProcess) -> None:
    # The /docs page calling its own API: same origin, as the browser says.
    response = httpx.post(
        service.url + "/gc?dryRun=true",
        headers={"Origin": service.url, "Sec-Fetch-Site": "same-origin"},
        timeout=30,
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ["/ws", "/ws/events", "/ws/agents/agent-x/terminal"])
def test_websockets_from_another_origin_are_closed_with_1008_before_any_frame(
    service: ServiceProcess, path: str
) -> None:
    url = service.ws_url + path + "?history=5"
    with (
        pytest.raises(ConnectionClosed) as closed,
        connect(url, origin=Origin("http://evil.example"), open_timeout=10) as ws,
    ):
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "ORIGIN_NOT_ALLOWED")


def preflight(proc: ServiceProcess, origin: str) -> httpx.Response:
    return httpx.options(
        proc.url + "/agents",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization",
        },
        timeout=10,
    )


def test_a_preflight_from_another_origin_gets_no_cors_answer(service: ServiceProcess) -> None:
    response = preflight(service, "http://evil.example")
    assert response.status_code == 403
    assert not any(name.startswith("access-control-") for name in response.headers)


@pytest.fixture
def allowing(start_service: Callable[..., ServiceProcess]) -> ServiceProcess:
    return start_service(
        {
            "PARALLAX_ALLOWED_ORIGINS": "http://localhost:5173",
            "PARALLAX_ALLOWED_HOSTS": "parallax.internal",
        }
    )


def test_an_allowed_origin_gets_its_own_origin_back_never_a_wildcard(
    allowing: ServiceProcess,
) -> None:
    answer = preflight(allowing, "http://localhost:5173")
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "authorization" in answer.headers["access-control-allow-headers"]
    response = httpx.get(
        allowing.url + "/agents", headers={"Origin": "http://localhost:5173"}, timeout=10
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:5173"
    other = httpx.get(allowing.url + "/agents", headers={"Origin": "http://evil.example"})
    assert other.status_code == 403


def test_an_allowed_host_name_is_served(allowing: ServiceProcess) -> None:
    response = httpx.get(
        allowing.url + "/agents", headers={"Host": "parallax.internal:3200"}, timeout=10
    )
    assert response.status_code == 200
    other = httpx.get(allowing.url + "/agents", headers={"Host": "parallax.internal.evil"})
    assert other.status_code == 403


def test_refusals_are_counted_in_prometheus(service: ServiceProcess, api: httpx.Client) -> None:
    def counts() -> tuple[float, float]:
        samples = scrape(api)
        return (
            total(samples, "parallax_errors_total", code="HOST_NOT_ALLOWED"),
            total(samples, "parallax_errors_total", code="ORIGIN_NOT_ALLOWED"),
        )

    hosts, origins = counts()
    httpx.get(service.url + "/agents", headers={"Host": "evil.example"}, timeout=10)
    httpx.post(service.url + "/gc", headers={"Origin": "http://evil.example"}, timeout=10)
    assert counts() == (hosts + 1, origins + 1)


def test_a_plain_json_client_without_origin_is_unaffected(
    service: ServiceProcess, engine: Engine
) -> None:
    # The control plane's Node client: JSON over HTTP, the /api prefix, no Origin, no token.
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "User-Agent": "node",
        "Connection": "keep-alive",
    }
    with httpx.Client(base_url=service.url + "/api", headers=headers, timeout=120) as client:
        created = client.post("/agents", json=agent_body())
        assert created.status_code == 201, created.text
        agent: dict[str, Any] = created.json()
        try:
            assert client.get(f"/agents/{agent['id']}").json()["id"] == agent["id"]
            assert agent["id"] in {a["id"] for a in client.get("/agents").json()["agents"]}
            assert client.get(f"/agents/{agent['id']}/logs").status_code == 200
        finally:
            assert client.delete(f"/agents/{agent['id']}").status_code == 204
    url = service.ws_url + "/ws/events?history=1"
    with connect(url, open_timeout=10) as ws:
        assert ws.recv(timeout=10)
