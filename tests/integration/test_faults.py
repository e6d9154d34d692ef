"""Fault injection: the service killed with SIGKILL, and the engine restarted under load.

Each test names what it injects and what it counts afterwards: agents lost, duplicated, or
left behind as orphans must all be zero.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from parallax_docker.backends.docker.deployment import DockerDeployment
from parallax_docker.backends.docker.engine import Engine as RawEngine
from parallax_docker.backends.docker.engine import EngineClient
from parallax_docker.errors import SocketError
from tests.integration.conftest import PREFIX, SESSION, agent_body
from tests.support.dockerd import PrivateDockerd
from tests.support.engine import Engine
from tests.support.images import AGENT_IMAGE, BUSYBOX_IMAGE
from tests.support.polling import poll
from tests.support.server import ServiceProcess

StartService = Callable[..., ServiceProcess]


def _containers(engine: Engine, instance: str) -> list[dict[str, Any]]:
    return engine.containers(f"parallax.instance={instance}")


def test_sigkill_during_spawns_leaves_no_orphan_and_retries_are_idempotent(
    start_service: StartService, engine: Engine
) -> None:
    instance = f"{PREFIX}-kill-spawn"
    env = {
        "PARALLAX_INSTANCE": instance,
        "PARALLAX_ORPHAN_GRACE_S": "1",
        "PARALLAX_READY_TIMEOUT_S": "10",
        "PARALLAX_JANITOR_INTERVAL_S": "0.2",
    }
    first = start_service(env)
    bodies = [agent_body(id=f"ks-{SESSION}-{i}") for i in range(8)]
    results: list[int] = []

    def post(body: dict[str, Any]) -> None:
        try:
            results.append(httpx.post(first.url + "/agents", json=body, timeout=30).status_code)
        except httpx.TransportError:
            results.append(-1)

    threads = [threading.Thread(target=post, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    # Injected: SIGKILL while the spawns are under way.
    time.sleep(0.25)
    first.stop(signal.SIGKILL)
    for thread in threads:
        thread.join(30)
    second = start_service(env)
    try:
        # Counted: every container left is a ready agent; half-made ones are removed.
        def settled() -> bool:
            listed = {
                a["id"]: a for a in httpx.get(second.url + "/agents", timeout=5).json()["agents"]
            }
            states = _containers(engine, instance)
            return all(c["State"] == "running" for c in states) and all(
                listed.get(c["Labels"]["parallax.agent.id"], {}).get("status") == "ready"
                for c in states
            )

        poll(settled, bool, timeout_s=30)
        # Retried with the same ids and bodies: one agent per id, never two.
        for body in bodies:
            response = httpx.post(second.url + "/agents", json=body, timeout=60)
            assert response.status_code == 201, response.text
        per_id: dict[str, int] = {}
        for container in _containers(engine, instance):
            agent_id = container["Labels"]["parallax.agent.id"]
            per_id[agent_id] = per_id.get(agent_id, 0) + 1
        assert per_id == {body["id"]: 1 for body in bodies}
    finally:
        for container in _containers(engine, instance):
            engine.remove_container(container["Id"])


def test_sigkill_in_steady_state_loses_and_duplicates_nothing(
    start_service: StartService, engine: Engine
) -> None:
    instance = f"{PREFIX}-kill-steady"
    env = {"PARALLAX_INSTANCE": instance}
    first = start_service(env)
    made = [
        httpx.post(first.url + "/agents", json=agent_body(), timeout=60).json() for _ in range(5)
    ]
    try:
        # Injected: SIGKILL of the service with five agents running.
        first.stop(signal.SIGKILL)
        second = start_service(env)
        listed = poll(
            lambda: httpx.get(second.url + "/agents", timeout=5).json()["agents"],
            lambda agents: all(a["status"] == "ready" for a in agents),
            timeout_s=10,
        )
        # Counted: the same five agents, the same containers, nothing more.
        assert sorted((a["id"], a["containerId"]) for a in listed) == sorted(
            (m["id"], m["containerId"]) for m in made
        )
        assert len(_containers(engine, instance)) == 5
    finally:
        for container in _containers(engine, instance):
            engine.remove_container(container["Id"])


@pytest.fixture(scope="module")
def private_dockerd(
    tmp_path_factory: pytest.TempPathFactory, engine: Engine
) -> Iterator[PrivateDockerd]:
    root = Path(tmp_path_factory.mktemp("dockerd", numbered=True))
    daemon = PrivateDockerd(root)
    daemon.start()
    try:
        daemon.load_images(AGENT_IMAGE, BUSYBOX_IMAGE)
        yield daemon
    finally:
        daemon.destroy()


def test_engine_restart_under_load_is_reconciled(
    private_dockerd: PrivateDockerd, start_service: StartService
) -> None:
    env = {
        "DOCKER_SOCKET": str(private_dockerd.socket),
        "DOCKER_NETWORK": f"{PREFIX}-restart",
        "PARALLAX_JANITOR_INTERVAL_S": "0.2",
    }
    proc = start_service(env)
    plain = [
        httpx.post(proc.url + "/agents", json=agent_body(), timeout=60).json() for _ in range(3)
    ]
    # No TERM trap: the engine's shutdown kills it (143), a crash that autoRestart answers.
    restarting = httpx.post(
        proc.url + "/agents",
        json=agent_body(
            autoRestart=True, command=["/bin/sh", "-c", "touch /tmp/ready; exec sleep 100000"]
        ),
        timeout=60,
    ).json()
    slowest_read = 0.0
    stop_reading = threading.Event()
    read_errors: list[str] = []

    def read_load() -> None:
        nonlocal slowest_read
        while not stop_reading.is_set():
            started = time.monotonic()
            try:
                response = httpx.get(proc.url + "/agents", timeout=10)
                if response.status_code != 200:
                    read_errors.append(str(response.status_code))
            except httpx.TransportError as exc:
                read_errors.append(type(exc).__name__)
            slowest_read = max(slowest_read, time.monotonic() - started)
            time.sleep(0.05)

    reader = threading.Thread(target=read_load)
    reader.start()
    try:
        # Injected: the engine stops (taking its containers down) and comes back.
        private_dockerd.stop()
        poll(
            lambda: httpx.get(proc.url + "/health", timeout=5).status_code,
            lambda s: s == 503,
            timeout_s=10,
        )
        write_started = time.monotonic()
        refused = httpx.post(proc.url + "/agents", json=agent_body(), timeout=10)
        assert refused.status_code == 503 and refused.json()["code"] == "SOCKET_ERROR"
        assert time.monotonic() - write_started < 2
        stale = httpx.get(f"{proc.url}/agents/{plain[0]['id']}", timeout=5).json()
        assert stale["stale"] is True
        private_dockerd.start()
        poll(
            lambda: httpx.get(proc.url + "/health", timeout=5).json()["runtime"]["synced"],
            bool,
            timeout_s=30,
        )

        def agent(agent_id: str) -> dict[str, Any]:
            return dict(httpx.get(f"{proc.url}/agents/{agent_id}", timeout=5).json())

        # Counted: each plain agent is reported as exited, not as still ready.
        for made in plain:
            state = poll(
                lambda m=made: agent(m["id"]),  # type: ignore[misc]
                lambda a: a["status"] in ("stopped", "error"),
                timeout_s=15,
            )
            assert state["stale"] is False
        back = poll(
            lambda: agent(restarting["id"]),
            lambda a: a["status"] == "ready" and a["restartCount"] >= 1,
            timeout_s=30,
        )
        assert back["containerId"] == restarting["containerId"]
        listed = httpx.get(proc.url + "/agents", timeout=5).json()
        assert listed["count"] == 4
    finally:
        stop_reading.set()
        reader.join(15)
    assert not read_errors, read_errors[:5]
    assert slowest_read < 2.0, f"a read took {slowest_read:.2f}s during the outage"


# -- the engine dies in the middle of an operation ------------------------------------------------


@pytest.fixture
def own_dockerd(
    tmp_path_factory: pytest.TempPathFactory, engine: Engine
) -> Iterator[PrivateDockerd]:
    """A private engine of the test's own: one restarted by an earlier test may refuse to start
    new containers on its old networks (libnetwork's store after a restart under load). A short
    folder: the engine's sockets live under it, and socket paths are limited to 108 bytes."""
    daemon = PrivateDockerd(Path(tmp_path_factory.mktemp("dd", numbered=True)))
    daemon.start()
    try:
        daemon.load_images(AGENT_IMAGE, BUSYBOX_IMAGE)
        yield daemon
    finally:
        daemon.destroy()


def _in_thread(call: Callable[[], httpx.Response]) -> tuple[threading.Thread, list[Any]]:
    """Run ``call`` in a thread; its response (or the transport error) lands in the list."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(call())
        except httpx.TransportError as exc:
            result.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def test_a_spawn_the_engine_cut_short_is_undone_once_it_is_back(
    own_dockerd: PrivateDockerd, start_service: StartService
) -> None:
    private_dockerd = own_dockerd
    env = {
        "DOCKER_SOCKET": str(private_dockerd.socket),
        "DOCKER_NETWORK": f"{PREFIX}-midspawn",
        "PARALLAX_JANITOR_INTERVAL_S": "0.2",
        "PARALLAX_READY_TIMEOUT_S": "30",
    }
    proc = start_service(env)
    private = Engine(str(private_dockerd.socket))
    # Ready only after 20 s: the engine goes away while the spawn waits for readiness.
    body = agent_body(command=["/bin/sh", "-c", "sleep 20; touch /tmp/ready; exec sleep 100000"])
    thread, answer = _in_thread(lambda: httpx.post(proc.url + "/agents", json=body, timeout=60))
    try:
        poll(
            lambda: [
                c for c in private.containers("parallax.managed=true") if c["State"] == "running"
            ],
            bool,
            timeout_s=20,
        )
        private_dockerd.stop()
        thread.join(30)
        # The caller was told it failed: the engine stopped the agent on its way down (502
        # HEALTH_CHECK_FAILED) or was already gone (503 SOCKET_ERROR); nothing is called ready.
        assert isinstance(answer[0], httpx.Response), answer
        assert (answer[0].status_code, answer[0].json()["code"]) in (
            (502, "HEALTH_CHECK_FAILED"),
            (503, "SOCKET_ERROR"),
        )
        private_dockerd.start()
        poll(
            lambda: httpx.get(proc.url + "/health", timeout=5).json()["runtime"]["synced"],
            bool,
            timeout_s=30,
        )
        # Its caller heard it failed: recovery removes it, and the same call then succeeds.
        poll(
            lambda: httpx.get(proc.url + "/agents", timeout=5).json()["count"],
            lambda count: count == 0,
            timeout_s=30,
        )
        assert private.containers("parallax.managed=true") == []
        quick = agent_body()
        retried = httpx.post(proc.url + "/agents", json=quick, timeout=60)
        assert retried.status_code == 201, retried.text
        assert (
            httpx.delete(f"{proc.url}/agents/{retried.json()['id']}", timeout=30).status_code == 204
        )
    finally:
        thread.join(60)
        private.close()


def test_a_stop_the_engine_cut_short_is_finished_once_it_is_back(
    own_dockerd: PrivateDockerd, start_service: StartService, tmp_path: Path
) -> None:
    private_dockerd = own_dockerd
    state_dir = tmp_path / "state"
    env = {
        "DOCKER_SOCKET": str(private_dockerd.socket),
        "DOCKER_NETWORK": f"{PREFIX}-midstop",
        "PARALLAX_JANITOR_INTERVAL_S": "0.2",
        "PARALLAX_STATE_DIR": str(state_dir),
        "PARALLAX_FAILPOINTS": "stop.stopped:4s",
    }
    proc = start_service(env)
    private = Engine(str(private_dockerd.socket))
    # Ignores SIGTERM: the stop waits out its whole grace period.
    agent = httpx.post(
        proc.url + "/agents",
        json=agent_body(
            command=["/bin/sh", "-c", "trap '' TERM; touch /tmp/ready; while :; do sleep 1; done"]
        ),
        timeout=60,
    ).json()
    thread, answer = _in_thread(
        lambda: httpx.delete(
            f"{proc.url}/agents/{agent['id']}", params={"timeout": 1_000}, timeout=60
        )
    )
    try:
        # The service freezes right after the container stopped, before it is removed.
        poll(
            lambda: list(state_dir.glob("journal/*/stop.*.json")),
            bool,
            timeout_s=10,
        )
        private_dockerd.stop()
        thread.join(30)
        assert isinstance(answer[0], httpx.Response) and answer[0].status_code == 503, answer
        private_dockerd.start()
        # The caller asked for the agent to go: once the engine is back, it goes.
        poll(
            lambda: httpx.get(f"{proc.url}/agents/{agent['id']}", timeout=5).status_code,
            lambda status: status == 404,
            timeout_s=30,
        )
        assert private.containers("parallax.managed=true") == []
        again = httpx.delete(f"{proc.url}/agents/{agent['id']}", timeout=30)
        assert again.status_code == 204, again.text
    finally:
        thread.join(60)
        private.close()


async def test_a_start_sent_while_the_engine_shuts_down_is_refused_and_works_once_it_is_back(
    own_dockerd: PrivateDockerd, tmp_path: Path
) -> None:
    """Docker 20.10 closes its socket to new connections when it starts to shut down, yet keeps
    serving kept ones while it stops its containers: a start sent on a kept connection then
    leaves containerd a task, and every later start of that container fails ("task ... already
    exists"). It is how an autoRestart agent the shutdown killed came back never."""
    raw = RawEngine(EngineClient(str(own_dockerd.socket)))
    deployment = DockerDeployment(str(own_dockerd.socket), secrets_dir=tmp_path / "secrets")
    backend = deployment.backend
    labels = {"test-session": SESSION}
    try:
        # Ignores SIGTERM: the engine's shutdown waits out its 8 s stop timeout.
        holder = await raw.containers.create(
            f"{PREFIX}-holder",
            {
                "Image": BUSYBOX_IMAGE,
                "Cmd": ["sh", "-c", "trap '' TERM; while :; do sleep 1; done"],
                "StopTimeout": 8,
                "Labels": labels,
                "HostConfig": {"NetworkMode": "none"},
            },
        )
        await raw.containers.start(holder["Id"])
        late = await raw.containers.create(
            f"{PREFIX}-late",
            {
                "Image": BUSYBOX_IMAGE,
                "Cmd": ["sleep", "100000"],
                "Labels": labels,
                "HostConfig": {"NetworkMode": "none"},
            },
        )
        # A kept connection in the backend's pool, as a running service has.
        assert await backend.get(late["Id"]) is not None

        own_dockerd.begin_stop()
        poll(own_dockerd.answers, lambda up: not up, timeout_s=10)
        # The premise: the engine, shutting down, still answers on the kept connection.
        assert (await backend.get(holder["Id"])) is not None
        with pytest.raises(SocketError):
            await backend.start(late["Id"])

        own_dockerd.stop()
        own_dockerd.start()
        await backend.start(late["Id"])
        state = await backend.get(late["Id"])
        assert state is not None and state.running
    finally:
        await raw.close()
        await deployment.close()
