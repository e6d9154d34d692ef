"""The service with its engine gone: it starts anyway, says SOCKET_ERROR, and recovers alone.

The engine is reached through a Unix-socket proxy in front of the real one; stopping the proxy
is, for the service, the same as dockerd going away (nothing listens on its socket).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import agent_body, managed_containers
from tests.support.engine import Engine
from tests.support.polling import poll
from tests.support.server import ServiceProcess
from tests.support.sockproxy import SocketProxy


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[SocketProxy]:
    socket_proxy = SocketProxy(tmp_path / "docker.sock")
    yield socket_proxy
    socket_proxy.close()


def _wait_for(predicate: Callable[[], bool], timeout_s: float = 15) -> None:
    poll(predicate, bool, timeout_s)


def test_service_starts_without_engine_and_recovers(
    proxy: SocketProxy, start_service: Callable[..., ServiceProcess], engine: Engine
) -> None:
    proc = start_service({"DOCKER_SOCKET": str(proxy.path)}, wait_healthy=False)
    health = httpx.get(proc.url + "/health", timeout=10)
    assert health.status_code == 503
    body = health.json()
    assert body["healthy"] is False and body["code"] == "SOCKET_ERROR"
    assert body["runtime"]["type"] == "docker"

    before = managed_containers(engine)
    spawn = httpx.post(proc.url + "/agents", json=agent_body(), timeout=10)
    assert spawn.status_code == 503
    assert spawn.json()["code"] == "SOCKET_ERROR"
    assert managed_containers(engine) == before

    proxy.start()
    _wait_for(lambda: httpx.get(proc.url + "/health", timeout=5).json()["runtime"]["synced"])
    created = httpx.post(proc.url + "/agents", json=agent_body(), timeout=60)
    assert created.status_code == 201, created.text
    engine.remove_container(created.json()["containerName"])


def test_engine_loss_fails_writes_fast_and_keeps_reads(
    proxy: SocketProxy, start_service: Callable[..., ServiceProcess], engine: Engine
) -> None:
    proxy.start()
    proc = start_service({"DOCKER_SOCKET": str(proxy.path)})
    created = httpx.post(proc.url + "/agents", json=agent_body(), timeout=60)
    assert created.status_code == 201, created.text
    handle: dict[str, Any] = created.json()
    try:
        proxy.stop()
        _wait_for(lambda: httpx.get(proc.url + "/health", timeout=5).status_code == 503)

        started = time.monotonic()
        response = httpx.delete(f"{proc.url}/agents/{handle['id']}", timeout=10)
        assert response.status_code == 503
        assert response.json()["code"] == "SOCKET_ERROR"
        assert time.monotonic() - started < 2, "a write waited on a dead engine"

        read = httpx.get(f"{proc.url}/agents/{handle['id']}", timeout=5)
        assert read.status_code == 200
        assert read.json()["stale"] is True
        assert read.json()["status"] == "ready"

        proxy.start()
        _wait_for(lambda: httpx.get(proc.url + "/health", timeout=5).status_code == 200)
        _wait_for(
            lambda: not httpx.get(f"{proc.url}/agents/{handle['id']}", timeout=5).json()["stale"]
        )
        response = httpx.delete(f"{proc.url}/agents/{handle['id']}", timeout=30)
        assert response.status_code == 204
        assert engine.inspect(handle["containerName"]) is None
    finally:
        engine.remove_container(handle["containerName"])
