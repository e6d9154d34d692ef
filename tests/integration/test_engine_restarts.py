"""Restarting the engine under a fleet of the project's agents, on private engines: without
live-restore the engine stops every agent (they exit 0 on its SIGTERM, like an exit of their
own), and those that asked for autoRestart come back while the others say why they stopped;
with live-restore nothing stops at all. doctor says which of the two an engine does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import PREFIX, agent_body
from tests.support.dockerd import PrivateDockerd
from tests.support.engine import Engine
from tests.support.polling import poll
from tests.support.server import ServiceProcess

StartService = Callable[..., ServiceProcess]
pytestmark = pytest.mark.slow


def _daemon(
    factory: pytest.TempPathFactory, image: str, *, live_restore: bool
) -> Iterator[PrivateDockerd]:
    daemon = PrivateDockerd(
        Path(factory.mktemp("dockerd", numbered=True)), live_restore=live_restore
    )
    daemon.start()
    try:
        daemon.load_images(image)
        yield daemon
    finally:
        daemon.destroy()


@pytest.fixture(scope="module")
def echo_image(engine: Engine, agent_image: Callable[[str], str]) -> str:
    return agent_image("echo")


@pytest.fixture(scope="module")
def plain_engine(
    tmp_path_factory: pytest.TempPathFactory, echo_image: str
) -> Iterator[PrivateDockerd]:
    yield from _daemon(tmp_path_factory, echo_image, live_restore=False)


@pytest.fixture(scope="module")
def restoring_engine(
    tmp_path_factory: pytest.TempPathFactory, echo_image: str
) -> Iterator[PrivateDockerd]:
    yield from _daemon(tmp_path_factory, echo_image, live_restore=True)


def _service(start_service: StartService, daemon: PrivateDockerd, name: str) -> ServiceProcess:
    return start_service(
        {
            "DOCKER_SOCKET": str(daemon.socket),
            "DOCKER_NETWORK": f"{PREFIX}-{name}",
            "PARALLAX_JANITOR_INTERVAL_S": "0.2",
        }
    )


def _spawn(proc: ServiceProcess, image: str, **fields: Any) -> dict[str, Any]:
    response = httpx.post(proc.url + "/agents", json=agent_body(image=image, **fields), timeout=60)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _agent(proc: ServiceProcess, agent_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{proc.url}/agents/{agent_id}", timeout=5).json())


def _beating(proc: ServiceProcess, agent_id: str) -> None:
    poll(
        lambda: _agent(proc, agent_id),
        lambda a: a["health"] == "healthy" and a["status"] == "ready",
        timeout_s=15,
        interval_s=0.2,
    )


def _synced_again(proc: ServiceProcess) -> None:
    poll(
        lambda: httpx.get(proc.url + "/health", timeout=5),
        lambda r: r.status_code == 200 and r.json()["runtime"]["synced"],
        timeout_s=60,
        interval_s=0.2,
    )


def _started_at(daemon: PrivateDockerd, container_id: str) -> str:
    engine = Engine(str(daemon.socket))
    try:
        info = engine.inspect(container_id)
        assert info is not None
        return str(info["State"]["StartedAt"])
    finally:
        engine.close()


def _doctor(daemon: PrivateDockerd) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "parallax_docker.cli.main", "doctor", "--json"],
        env={**os.environ, "DOCKER_SOCKET": str(daemon.socket)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    checks = {check["name"]: check for check in json.loads(done.stdout)}
    return dict(checks["live restore"])


def test_without_live_restore_auto_restart_agents_come_back_and_others_say_why(
    plain_engine: PrivateDockerd, start_service: StartService, echo_image: str
) -> None:
    assert _doctor(plain_engine)["outcome"] == "warn"
    proc = _service(start_service, plain_engine, "plain")
    back = _spawn(proc, echo_image, autoRestart=True)
    stays = _spawn(proc, echo_image)
    # Injected: the engine shuts down (stopping every container) and starts again.
    plain_engine.restart()
    _synced_again(proc)
    returned = poll(
        lambda: _agent(proc, back["id"]),
        lambda a: a["status"] == "ready" and a["restartCount"] >= 1,
        timeout_s=60,
        interval_s=0.2,
    )
    assert returned["containerId"] == back["containerId"] and returned["health"] == "healthy"
    stopped = poll(
        lambda: _agent(proc, stays["id"]),
        lambda a: a["status"] == "stopped" and a["errorCode"] is not None,
        timeout_s=30,
        interval_s=0.2,
    )
    # The idle loop exits 0 on SIGTERM once it has set its trap; a restart within the first
    # milliseconds of its start (the spawn answers as soon as the entrypoint beats) kills it: 143.
    assert stopped["errorCode"] == "ENGINE_STOPPED" and stopped["exitCode"] in (0, 143)
    assert "engine stopped the agent" in stopped["error"]
    assert stopped["restartCount"] == 0


def test_with_live_restore_an_engine_restart_stops_no_agent(
    restoring_engine: PrivateDockerd, start_service: StartService, echo_image: str
) -> None:
    assert _doctor(restoring_engine)["outcome"] == "ok"
    proc = _service(start_service, restoring_engine, "restore")
    agents = [_spawn(proc, echo_image, autoRestart=True), _spawn(proc, echo_image)]
    started = {a["id"]: _started_at(restoring_engine, a["containerId"]) for a in agents}
    restoring_engine.restart()
    _synced_again(proc)
    for made in agents:
        now = _agent(proc, made["id"])
        assert (now["status"], now["restartCount"], now["stale"]) == ("ready", 0, False)
        assert _started_at(restoring_engine, made["containerId"]) == started[made["id"]]
    # And they still beat: healthy a heartbeat interval and more later.
    for made in agents:
        _beating(proc, made["id"])
