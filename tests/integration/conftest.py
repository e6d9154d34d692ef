"""Integration fixtures: the real engine, the real service process, and clean-up.

Every container a test session makes carries the user label ``test-session=<id>`` and every
network and volume name starts with ``ptest-<id>``; whatever carries them is removed at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.engine import Engine
from tests.support.images import AGENT_IMAGE, ensure_test_images
from tests.support.server import ServiceProcess

SESSION = uuid.uuid4().hex[:8]
PREFIX = f"ptest-{SESSION}"


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    client = Engine()
    if not client.ping():
        pytest.fail(
            "no Docker engine answers on /var/run/docker.sock; run scripts/test.sh, "
            "which installs and starts one"
        )
    ensure_test_images()
    yield client
    for container in client.containers(f"test-session={SESSION}"):
        client.remove_container(container["Id"])
    for container in client.containers("parallax.managed=true"):
        if any(
            PREFIX in net for net in (container.get("NetworkSettings") or {}).get("Networks", {})
        ):
            client.remove_container(container["Id"])
    for network in client.networks(PREFIX):
        client.remove_network(network["Name"])
    for volume in client.volumes(PREFIX):
        client.remove_volume(volume["Name"])
    client.close()


@pytest.fixture(scope="session")
def service_env() -> dict[str, str]:
    return {
        "DOCKER_NETWORK": f"{PREFIX}-net",
        "LOG_LEVEL": "INFO",
        "PARALLAX_READY_TIMEOUT_S": "30",
        "PARALLAX_STOP_GRACE_S": "5",
    }


@pytest.fixture(scope="session")
def service(
    engine: Engine, service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    log_path = tmp_path_factory.mktemp("service") / "service.log"
    proc = ServiceProcess(service_env, log_path).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def api(service: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=120) as client:
        yield client


@pytest.fixture
def start_service(engine: Engine, tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start an extra service with its own settings (stopped at the end of the test)."""
    started: list[ServiceProcess] = []

    def start(env: dict[str, str] | None = None, wait_healthy: bool = True) -> ServiceProcess:
        merged = {"DOCKER_NETWORK": f"{PREFIX}-net", **(env or {})}
        proc = ServiceProcess(merged, tmp_path / f"service-{len(started)}.log")
        started.append(proc)
        return proc.start(wait_healthy=wait_healthy)

    yield start
    for proc in started:
        proc.stop()


def agent_body(**fields: Any) -> dict[str, Any]:
    """A spawn body for the test image, labelled for clean-up."""
    body: dict[str, Any] = {
        "name": f"t-{uuid.uuid4().hex[:10]}",
        "type": "custom",
        "image": AGENT_IMAGE,
        "resources": {"memory": "64m", "cpu": 0.25},
    }
    body.update(fields)
    body["labels"] = {"test-session": SESSION, **fields.get("labels", {})}
    return body


@pytest.fixture
def spawn(api: httpx.Client, engine: Engine) -> Iterator[Callable[..., dict[str, Any]]]:
    """Spawn through the API, asserting 201; every agent is removed after the test."""
    made: list[str] = []

    def do(**fields: Any) -> dict[str, Any]:
        response = api.post("/agents", json=agent_body(**fields))
        assert response.status_code == 201, response.text
        handle: dict[str, Any] = response.json()
        made.append(handle["containerName"])
        return handle

    yield do
    for name in made:
        engine.remove_container(name)


def managed_containers(engine: Engine) -> set[str]:
    return {c["Id"] for c in engine.containers(f"test-session={SESSION}")}
