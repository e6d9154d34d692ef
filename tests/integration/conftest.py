"""Integration fixtures: the real engine, the real service process, and clean-up.

Every container a test session makes carries the user label ``test-session=<id>`` and every
network and volume name starts with ``ptest-<id>``; whatever carries them is removed at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cli_profiles import CliProfile, spawn_fields, write_settings
from tests.support.engine import Engine
from tests.support.images import AGENT_IMAGE, ensure_test_images
from tests.support.server import ServiceProcess
from tests.support.standin_container import StandinContainer
from tests.support.standins.client import Tenant

SESSION = uuid.uuid4().hex[:8]
PREFIX = f"ptest-{SESSION}"
# Every service of the session writes its agents' secret env files here (removed at the end).
SECRETS_DIR = Path(tempfile.gettempdir()) / f"{PREFIX}-secrets"
# The session's service keeps its store (messages, events, sessions) here; every extra service
# gets its own under the test's tmp_path unless the test passes PARALLAX_STATE_DIR.
STATE_DIR = Path(tempfile.gettempdir()) / f"{PREFIX}-state"


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
    # Execution volumes are named parallax-exec-<instance>-<executionId>: match anywhere.
    for volume in client.volumes():
        if PREFIX in volume["Name"]:
            client.remove_volume(volume["Name"])
    client.prune_untagged_project_images()
    shutil.rmtree(SECRETS_DIR, ignore_errors=True)
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    client.close()


@pytest.fixture(scope="session")
def service_env() -> dict[str, str]:
    return {
        "DOCKER_NETWORK": f"{PREFIX}-net",
        "PARALLAX_INSTANCE": PREFIX,
        "LOG_LEVEL": "INFO",
        "PARALLAX_READY_TIMEOUT_S": "30",
        "PARALLAX_STOP_GRACE_S": "5",
        "PARALLAX_SECRETS_DIR": str(SECRETS_DIR),
        "PARALLAX_STATE_DIR": str(STATE_DIR),
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
    """Start an extra service with its own settings (stopped at the end of the test).

    Each gets its own instance name, so that it neither adopts nor cleans up the agents of the
    session's service or of other tests; pass PARALLAX_INSTANCE to share one on purpose.
    """
    started: list[ServiceProcess] = []
    instance = f"{PREFIX}-{uuid.uuid4().hex[:6]}"

    def start(
        env: dict[str, str] | None = None, wait_healthy: bool = True, args: tuple[str, ...] = ()
    ) -> ServiceProcess:
        merged = {
            "DOCKER_NETWORK": f"{PREFIX}-net",
            "PARALLAX_INSTANCE": f"{instance}-{len(started)}",
            "PARALLAX_SECRETS_DIR": str(SECRETS_DIR),
            "PARALLAX_STATE_DIR": str(tmp_path / f"state-{len(started)}"),
            **(env or {}),
        }
        proc = ServiceProcess(merged, tmp_path / f"service-{len(started)}.log", args)
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


def session_objects(engine: Engine) -> tuple[set[str], set[str], set[str]]:
    """This session's containers, networks and volumes (others' tests run alongside)."""
    containers = {c["Id"] for c in engine.containers(f"test-session={SESSION}")}
    containers |= {
        c["Id"]
        for c in engine.containers("parallax.managed=true")
        if any(SESSION in name for name in c.get("Names") or ())
    }
    networks = {n["Name"] for n in engine.networks() if SESSION in n["Name"]}
    volumes = {v["Name"] for v in engine.volumes() if SESSION in v["Name"]}
    return containers, networks, volumes


@pytest.fixture
def refused(api: httpx.Client, engine: Engine) -> Callable[..., dict[str, Any]]:
    """Post a spawn that must be refused; check the status, the code and that nothing appeared.

    Names the request could create things under carry the session id, so that what other test
    sessions create meanwhile does not count.
    """

    def check(status: int, code: str, **fields: Any) -> dict[str, Any]:
        before = session_objects(engine)
        response = api.post("/agents", json=agent_body(**fields))
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        assert body["code"] == code, body
        assert body["error"] and body["resolution"]
        assert session_objects(engine) == before
        return body

    return check


@pytest.fixture(scope="session")
def agent_image(engine: Engine) -> Callable[[str], str]:
    """``agent_image("echo")``: the project image of that type, built once if it is missing."""
    built: set[str] = set()

    # Named as the service names them: PARALLAX_IMAGE_TAG (the service under test reads it too).
    tag = os.environ.get("PARALLAX_IMAGE_TAG", "latest")

    def ensure(kind: str) -> str:
        ref = f"parallax/agent-{kind}:{tag}"
        if kind in built or engine.http.get(f"/images/{ref}/json").is_success:
            built.add(kind)
            return ref
        done = subprocess.run(
            [sys.executable, "-m", "parallax_docker.cli.main", "images", "build", kind, "--plain"],
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"could not build {ref}:\n{(done.stdout + done.stderr)[-4000:]}")
        built.add(kind)
        return ref

    return ensure


@pytest.fixture(scope="session")
def standin(service: ServiceProcess, engine: Engine) -> Iterator[StandinContainer]:
    """The stand-in model services on the session's agent network (``http://standin:8080``).

    After ``service``: the service makes the network when it starts.
    """
    container = StandinContainer(
        f"{PREFIX}-standin", f"{PREFIX}-net", {"test-session": SESSION}
    ).start()
    yield container
    container.stop()


@pytest.fixture
def tenant(standin: StandinContainer) -> Iterator[Tenant]:
    """This test's own script on the stand-in: its agents present ``tenant.key`` as API key."""
    mine = Tenant(standin.base_url)
    yield mine
    mine.reset()


@pytest.fixture
def cli_agent(
    spawn: Callable[..., dict[str, Any]],
    agent_image: Callable[[str], str],
    standin: StandinContainer,
    tenant: Tenant,
    engine: Engine,
) -> Callable[..., dict[str, Any]]:
    """Spawn an agent of a CLI profile that talks to this test's stand-in tenant."""

    def make(profile: CliProfile, **fields: Any) -> dict[str, Any]:
        body = spawn_fields(profile, standin.agent_url, tenant.key, agent_image(profile.type))
        agent = spawn(**body, **fields)
        write_settings(engine, agent["containerName"], profile)
        return agent

    return make
