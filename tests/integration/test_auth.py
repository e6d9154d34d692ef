"""The API token on the real service: every route and WebSocket needs it; exposure is refused."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.integration.conftest import PREFIX, SECRETS_DIR, agent_body, session_objects
from tests.support.engine import Engine
from tests.support.server import ServiceProcess, free_port

TOKEN = "it-" + os.urandom(16).hex()
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _wait_synced(url: str, headers: dict[str, str], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url + "/health", headers=headers, timeout=2)
            if response.status_code == 200 and response.json()["runtime"]["synced"]:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("the service never became healthy")


@pytest.fixture
def guarded(start_service: Callable[..., ServiceProcess]) -> ServiceProcess:
    proc = start_service({"PARALLAX_API_TOKEN": TOKEN}, wait_healthy=False)
    _wait_synced(proc.url, AUTH)
    return proc


def _routes(proc: ServiceProcess) -> list[tuple[str, str]]:
    schema = httpx.get(proc.url + "/openapi.json", headers=AUTH, timeout=10).json()
    found = [
        (method.upper(), path.replace("{agent_id}", "agent-x"))
        for path, operations in schema["paths"].items()
        for method in operations
    ]
    assert len(found) >= 8
    return found


def test_every_http_route_refuses_a_request_without_the_token(guarded: ServiceProcess) -> None:
    for method, path in [*_routes(guarded), ("GET", "/openapi.json"), ("GET", "/docs")]:
        for prefix in ("", "/api"):
            response = httpx.request(method, guarded.url + prefix + path, timeout=10)
            assert response.status_code == 401, (method, prefix + path)
            assert response.json()["code"] == "UNAUTHORIZED"
            assert response.headers["www-authenticate"].startswith("Bearer")


def test_every_http_route_refuses_a_wrong_token(guarded: ServiceProcess) -> None:
    wrong = {"Authorization": f"Bearer {TOKEN[:-1]}x"}
    for method, path in _routes(guarded):
        response = httpx.request(method, guarded.url + path, headers=wrong, timeout=10)
        assert response.status_code == 401, (method, path)


def test_a_token_in_the_query_does_not_open_http_routes(guarded: ServiceProcess) -> None:
    response = httpx.get(guarded.url + "/agents", params={"token": TOKEN}, timeout=10)
    assert response.status_code == 401


def test_an_unauthenticated_spawn_creates_nothing(guarded: ServiceProcess, engine: Engine) -> None:
    before = session_objects(engine)
    response = httpx.post(
        guarded.url + "/agents", json=agent_body(network=f"{PREFIX}-authnet"), timeout=30
    )
    assert response.status_code == 401
    assert session_objects(engine) == before


def test_with_the_token_the_api_works(guarded: ServiceProcess, engine: Engine) -> None:
    with httpx.Client(base_url=guarded.url, headers=AUTH, timeout=60) as api:
        assert api.get("/agents").status_code == 200
        response = api.post("/agents", json=agent_body())
        assert response.status_code == 201, response.text
        handle = response.json()
        try:
            assert api.get(f"/api/agents/{handle['id']}").status_code == 200
        finally:
            assert api.delete(f"/agents/{handle['id']}").status_code == 204
    assert engine.inspect(handle["containerName"]) is None


def _ws_close_code(url: str, **options: Any) -> int | None:
    """Connect; return the close code the server ends with (None: refused at the handshake)."""
    try:
        with connect(url, open_timeout=5, proxy=None, **options) as ws:
            try:
                ws.recv(timeout=5)
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
            except TimeoutError:
                return 0
    except InvalidStatus:
        return None
    return 0


def test_a_websocket_without_the_token_is_closed_with_policy_violation(
    guarded: ServiceProcess,
) -> None:
    base = guarded.ws_url
    for path in ("/ws", "/api/ws", "/ws/events", "/anything"):
        assert _ws_close_code(base + path) == 1008, path


def test_a_websocket_with_a_wrong_token_is_closed_with_policy_violation(
    guarded: ServiceProcess,
) -> None:
    base = guarded.ws_url
    assert _ws_close_code(base + "/ws?token=wrong-token-0123456789") == 1008
    wrong = {"Authorization": "Bearer wrong-token-0123456789"}
    assert _ws_close_code(base + "/ws", additional_headers=wrong) == 1008


def test_a_websocket_with_the_token_gets_past_the_guard(guarded: ServiceProcess) -> None:
    # Past the guard, the route decides: an event stream (or no such route), never 1008.
    base = guarded.ws_url
    assert _ws_close_code(base + "/ws", additional_headers=AUTH) != 1008
    assert _ws_close_code(f"{base}/ws?token={TOKEN}") != 1008


def test_the_token_never_reaches_the_service_log(guarded: ServiceProcess) -> None:
    httpx.get(guarded.url + "/agents", headers=AUTH, timeout=10)
    httpx.get(guarded.url + "/agents", params={"token": TOKEN}, timeout=10)
    _ws_close_code(f"{guarded.url.replace('http://', 'ws://')}/ws?token={TOKEN}")
    assert TOKEN not in guarded.logs()


# -- serve: refusing exposure -------------------------------------------------------------------


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    merged = {
        **os.environ,
        "DOCKER_NETWORK": f"{PREFIX}-net",
        "PARALLAX_SECRETS_DIR": str(SECRETS_DIR),
        **(env or {}),
    }
    merged.pop("PARALLAX_API_TOKEN", None)
    merged.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "parallax_docker.cli.main", "serve", *args],
        env=merged,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def served() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = _serve(*args, env=env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_serve_refuses_a_non_loopback_host_without_a_token(
    served: Callable[..., subprocess.Popen[bytes]], host: str
) -> None:
    proc = served("--host", host, "--port", str(free_port()))
    assert proc.wait(30) == 2
    assert proc.stdout is not None
    output = proc.stdout.read().decode()
    assert "CONFIG_ERROR" in output and "token" in output


def test_serve_refuses_a_non_loopback_host_env_without_a_token(
    served: Callable[..., subprocess.Popen[bytes]],
) -> None:
    proc = served(env={"HOST": "0.0.0.0", "PORT": str(free_port())})
    assert proc.wait(30) == 2


def test_serve_with_insecure_binds_a_non_loopback_host(
    served: Callable[..., subprocess.Popen[bytes]],
) -> None:
    port = free_port()
    proc = served("--host", "0.0.0.0", "--port", str(port), "--insecure")
    _wait_synced(f"http://127.0.0.1:{port}", {})
    assert proc.poll() is None


def test_serve_with_a_token_file_binds_a_non_loopback_host_and_requires_it(
    served: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    port = free_port()
    served("--host", "0.0.0.0", "--port", str(port), "--token-file", str(token_file))
    url = f"http://127.0.0.1:{port}"
    _wait_synced(url, AUTH)
    assert httpx.get(url + "/agents", timeout=5).status_code == 401
    assert httpx.get(url + "/agents", headers=AUTH, timeout=5).status_code == 200


def test_serve_with_an_unreadable_token_file_exits_2(
    served: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    proc = served("--token-file", str(tmp_path / "missing"), "--port", str(free_port()))
    assert proc.wait(30) == 2
