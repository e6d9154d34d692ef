"""The Swarm tests' fixtures: one 3-node swarm per session (tests/support/swarm.py), the real
service on it (``PARALLAX_BACKEND=swarm``), and helpers to read what the nodes hold.

The swarm is made the first time a test asks for it and taken down at the end of the session,
whatever happened; a run killed before that is cleaned up by the next one (``reap_stale``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.integration.conftest import PREFIX, SECRETS_DIR, SESSION, agent_body
from tests.support.images import AGENT_IMAGE, DOCKER, ensure_test_images
from tests.support.polling import poll
from tests.support.server import ServiceProcess
from tests.support.swarm import SwarmCluster, reap_stale

INSTANCE = f"{PREFIX}-swarm"
NETWORK = f"{PREFIX}-swnet"
Handle = dict[str, Any]


@pytest.fixture(scope="session")
def swarm() -> Iterator[SwarmCluster]:
    # The machine's own engine is only where the images come from: these tests never use its
    # networks or containers.
    ensure_test_images()
    reap_stale()
    cluster = SwarmCluster(SESSION[:6])
    try:
        cluster.create()
        cluster.load_images(AGENT_IMAGE)
        yield cluster
    finally:
        cluster.destroy()


class SwarmService:
    """The service on the swarm, which a test may restart against another manager."""

    def __init__(self, cluster: SwarmCluster, folder: Path) -> None:
        self.cluster = cluster
        self.folder = folder
        self.process: ServiceProcess | None = None
        self.api = httpx.Client(timeout=180)
        self.manager = 1
        self._starts = 0

    def start(self, manager: int = 1) -> None:
        env = {
            **self.cluster.service_env(manager),
            "DOCKER_NETWORK": NETWORK,
            "PARALLAX_INSTANCE": INSTANCE,
            "PARALLAX_SECRETS_DIR": str(SECRETS_DIR),
            # A fresh state folder for each start: what it knows of the agents after a
            # restart comes from the services' labels alone.
            "PARALLAX_STATE_DIR": str(self.folder / f"state-{self._starts}"),
            "PARALLAX_READY_TIMEOUT_S": "60",
            "PARALLAX_STOP_GRACE_S": "5",
            "PARALLAX_SWARM_PLACEMENT_TIMEOUT_S": "120",
            "PARALLAX_ALLOWED_RUNTIMES": "runc,runsc",
            "LOG_LEVEL": "INFO",
        }
        log = self.folder / f"service-{self._starts}.log"
        self._starts += 1
        self.process = ServiceProcess(env, log).start(timeout_s=60)
        self.manager = manager
        self.api.close()
        self.api = httpx.Client(base_url=self.process.url, timeout=180)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    @property
    def url(self) -> str:
        assert self.process is not None
        return self.process.url

    @property
    def ws_url(self) -> str:
        assert self.process is not None
        return self.process.ws_url

    def events(self, agent_id: str, history: int = 100) -> list[dict[str, Any]]:
        """The agent's events so far (the service's kept history)."""
        url = f"{self.ws_url}/ws/events?agentId={agent_id}&history={history}"
        frames: list[dict[str, Any]] = []
        with connect(url, open_timeout=10, max_size=None) as ws:
            try:
                while True:
                    frames.append(json.loads(ws.recv(timeout=1)))
            except TimeoutError:
                return frames


@pytest.fixture(scope="session")
def swarm_service(
    swarm: SwarmCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SwarmService]:
    service = SwarmService(swarm, tmp_path_factory.mktemp("swarm-service"))
    service.start()
    yield service
    service.stop()
    service.api.close()


@pytest.fixture
def swarm_api(swarm_service: SwarmService) -> httpx.Client:
    return swarm_service.api


@pytest.fixture
def swarm_spawn(swarm_service: SwarmService) -> Iterator[Callable[..., Handle]]:
    """Spawn on the swarm, asserting 201; every agent is stopped after the test."""
    made: list[str] = []

    def do(**fields: Any) -> Handle:
        response = swarm_service.api.post("/agents", json=agent_body(**fields))
        assert response.status_code == 201, response.text
        handle: Handle = response.json()
        made.append(handle["id"])
        return handle

    yield do
    for agent_id in made:
        swarm_service.api.delete(f"/agents/{agent_id}", params={"force": "true"})


@pytest.fixture(scope="session")
def swarm_echo(swarm: SwarmCluster) -> str:
    """The echo agent image, on the swarm's first manager (built on this machine if missing)."""
    ref = "parallax/agent-echo:latest"
    present = subprocess.run([DOCKER, "image", "inspect", ref], capture_output=True, check=False)
    if present.returncode != 0:
        built = subprocess.run(
            [
                sys.executable,
                "-m",
                "parallax_docker.cli.main",
                "images",
                "build",
                "echo",
                "--plain",
            ],
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        if built.returncode != 0:
            pytest.fail(f"could not build {ref}:\n{(built.stdout + built.stderr)[-4000:]}")
    swarm.load_images(ref)
    return ref


def container_on(swarm: SwarmCluster, handle: Handle) -> tuple[int, dict[str, Any]]:
    """The node (index) and the inspect of the agent's container, read from that node itself."""
    index = swarm.node_of(handle["node"])
    node = swarm.engine(index)
    try:
        found = node.containers(f"parallax.agent.id={handle['id']}")
        running = [c for c in found if c["State"] == "running"]
        assert running, f"no running container of {handle['id']} on {handle['node']}: {found}"
        inspect = node.inspect(running[0]["Id"])
        assert inspect is not None
        return index, inspect
    finally:
        node.close()


def node_exec(swarm: SwarmCluster, index: int, container: str, *argv: str) -> tuple[int, str]:
    node = swarm.engine(index)
    try:
        return node.exec(container, *argv)
    finally:
        node.close()


def wait_agent(
    api: httpx.Client, agent_id: str, until: Callable[[Handle], bool], within_s: float = 90
) -> Handle:
    def fetch() -> Handle:
        body: Handle = api.get(f"/agents/{agent_id}").json()
        return body

    return poll(fetch, until, timeout_s=within_s, interval_s=0.2)


def wait_node(swarm: SwarmCluster, name: str, state: str, within_s: float = 90) -> None:
    poll(lambda: swarm.node_states(), lambda s: s.get(name) == state, within_s, interval_s=0.2)


def since(start: float) -> float:
    return round(time.monotonic() - start, 1)
