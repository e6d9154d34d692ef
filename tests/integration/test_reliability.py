"""Nothing lost: the service's view follows the engine whatever happens to agents.

Each test says what it injects (a kill, an OOM, a removal behind the service's back, a lifetime
running out) and what it counts afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.conftest import PREFIX, SESSION, agent_body, managed_containers
from tests.support.engine import Engine
from tests.support.polling import poll
from tests.support.server import ServiceProcess

Spawn = Callable[..., dict[str, Any]]
StartService = Callable[..., ServiceProcess]


def test_killed_agent_is_reported_within_a_second(
    spawn: Spawn, api: httpx.Client, engine: Engine
) -> None:
    handle = spawn()
    # Injected: SIGKILL to the agent's container. Counted: time until the API says so.
    killed_at = time.monotonic()
    engine.kill(handle["containerName"])
    agent = poll(
        lambda: api.get(f"/agents/{handle['id']}").json(),
        lambda a: a["status"] == "error",
        timeout_s=5,
    )
    assert time.monotonic() - killed_at < 1.0
    assert agent["exitCode"] == 137
    assert agent["errorCode"] == "AGENT_EXITED"


def test_oom_kill_is_reported_as_resource_limit(spawn: Spawn, api: httpx.Client) -> None:
    # Injected: a process that eats memory under a 16m limit (tail buffers /dev/zero forever).
    handle = spawn(
        resources={"memory": "16m", "cpu": 0.5},
        command=["/bin/sh", "-c", "touch /tmp/ready; sleep 0.3; tail /dev/zero"],
    )
    agent = poll(
        lambda: api.get(f"/agents/{handle['id']}").json(),
        lambda a: a["status"] == "error",
        timeout_s=15,
    )
    assert agent["errorCode"] == "RESOURCE_LIMIT"
    assert "memory" in agent["error"]


def test_container_removed_behind_the_service_is_forgotten(
    spawn: Spawn, api: httpx.Client, engine: Engine
) -> None:
    handle = spawn()
    # Injected: `docker rm -f` of the agent's container. Counted: the agent leaves the list.
    engine.remove_container(handle["containerName"])
    poll(lambda: api.get(f"/agents/{handle['id']}").status_code, lambda s: s == 404, timeout_s=2)
    ids = {a["id"] for a in api.get("/agents").json()["agents"]}
    assert handle["id"] not in ids


def test_agent_exiting_cleanly_is_stopped(spawn: Spawn, api: httpx.Client) -> None:
    handle = spawn(command=["/bin/sh", "-c", "touch /tmp/ready; sleep 0.5; exit 0"])
    agent = poll(
        lambda: api.get(f"/agents/{handle['id']}").json(),
        lambda a: a["status"] != "ready",
        timeout_s=5,
    )
    assert agent["status"] == "stopped"
    assert agent["exitCode"] == 0


def test_retried_spawn_with_same_id_and_body_is_the_same_agent(
    api: httpx.Client, engine: Engine
) -> None:
    body = agent_body(id=f"idem-{SESSION}")
    first = api.post("/agents", json=body)
    try:
        assert first.status_code == 201, first.text
        again = api.post("/agents", json=body)
        assert again.status_code == 201
        assert again.json()["containerId"] == first.json()["containerId"]
        changed = api.post("/agents", json={**body, "role": "other"})
        assert changed.status_code == 409
        assert changed.json()["code"] == "CONFLICT"
        named = engine.containers(f"parallax.agent.id={body['id']}")
        assert len(named) == 1
    finally:
        engine.remove_container(f"parallax-{body['id']}")


def test_lifetime_timeout_stops_the_agent(spawn: Spawn, api: httpx.Client, engine: Engine) -> None:
    handle = spawn(resources={"memory": "64m", "cpu": 0.25, "timeout": 2})
    started = time.monotonic()
    poll(lambda: api.get(f"/agents/{handle['id']}").status_code, lambda s: s == 404, timeout_s=10)
    assert time.monotonic() - started >= 1.5
    assert engine.inspect(handle["containerName"]) is None


def test_idle_timeout_stops_an_idle_agent(spawn: Spawn, api: httpx.Client, engine: Engine) -> None:
    handle = spawn(idleTimeout=2)
    poll(lambda: api.get(f"/agents/{handle['id']}").status_code, lambda s: s == 404, timeout_s=10)
    assert engine.inspect(handle["containerName"]) is None


def test_lifetime_holds_across_a_service_restart(
    start_service: StartService, engine: Engine
) -> None:
    shared = {"PARALLAX_INSTANCE": f"{PREFIX}-lifetime"}
    first = start_service(shared)
    body = agent_body(resources={"memory": "64m", "cpu": 0.25, "timeout": 4})
    handle = httpx.post(first.url + "/agents", json=body, timeout=60).json()
    try:
        first.stop()
        assert engine.inspect(handle["containerName"]) is not None
        second = start_service(shared)
        poll(
            lambda: httpx.get(f"{second.url}/agents/{handle['id']}", timeout=5).status_code,
            lambda s: s == 404,
            timeout_s=15,
        )
        assert engine.inspect(handle["containerName"]) is None
    finally:
        engine.remove_container(handle["containerName"])


def test_auto_restart_restarts_with_back_off_up_to_the_cap(
    start_service: StartService, engine: Engine
) -> None:
    proc = start_service({"PARALLAX_AUTO_RESTART_MAX": "2", "PARALLAX_JANITOR_INTERVAL_S": "0.2"})
    # Injected: an agent that crashes (exit 3) a moment after each start.
    body = agent_body(
        autoRestart=True, command=["/bin/sh", "-c", "touch /tmp/ready; sleep 0.5; exit 3"]
    )
    handle = httpx.post(proc.url + "/agents", json=body, timeout=60).json()
    url = f"{proc.url}/agents/{handle['id']}"
    try:
        seen = poll(
            lambda: httpx.get(url, timeout=5).json(),
            lambda a: a["restartCount"] >= 2 and a["status"] == "error",
            timeout_s=30,
        )
        # The cap holds: no third restart comes after the second crash. Checking that
        # something does not happen takes waiting past when it would have: the third restart
        # would come after a back-off of 2 s (1 s doubled), plus a janitor pass.
        time.sleep(3)
        final = httpx.get(url, timeout=5).json()
        assert final["restartCount"] == 2 == seen["restartCount"]
        assert final["status"] == "error" and final["exitCode"] == 3
    finally:
        engine.remove_container(handle["containerName"])


def test_strict_admission_refuses_beyond_host_capacity(
    start_service: StartService, engine: Engine
) -> None:
    info = engine.http.get("/info").json()
    # Capacity for two 64m agents and a bit: overcommit set from the host's real memory.
    overcommit = (150 * 1024 * 1024) / info["MemTotal"]
    proc = start_service(
        {"PARALLAX_ADMISSION": "limits", "PARALLAX_MEMORY_OVERCOMMIT": f"{overcommit:.12f}"}
    )
    made: list[str] = []
    try:
        for _ in range(2):
            response = httpx.post(proc.url + "/agents", json=agent_body(), timeout=60)
            assert response.status_code == 201, response.text
            made.append(response.json()["containerName"])
        before = managed_containers(engine)
        refused = httpx.post(proc.url + "/agents", json=agent_body(), timeout=60)
        assert refused.status_code == 507
        body = refused.json()
        assert body["code"] == "RESOURCE_LIMIT"
        assert "left" in body["error"]
        assert managed_containers(engine) == before
    finally:
        for name in made:
            engine.remove_container(name)


@pytest.mark.parametrize(
    ("env", "args"),
    [({"PARALLAX_STOP_AGENTS_ON_EXIT": "true"}, ()), ({}, ("--stop-agents-on-exit",))],
)
def test_stop_agents_on_exit_takes_them_along(
    start_service: StartService, engine: Engine, env: dict[str, str], args: tuple[str, ...]
) -> None:
    proc = start_service(env, args=args)
    handle = httpx.post(proc.url + "/agents", json=agent_body(), timeout=60).json()
    try:
        proc.stop()
        assert engine.inspect(handle["containerName"]) is None
    finally:
        engine.remove_container(handle["containerName"])


def test_gc_reports_then_removes_leftovers(start_service: StartService, engine: Engine) -> None:
    proc = start_service({"PARALLAX_NETWORK_GRACE_S": "0"})
    network = f"{PREFIX}-gcnet"
    volume = f"{PREFIX}-gcvol"
    body = agent_body(
        network=network,
        volumes=[f"{volume}:/data"],
        command=["/bin/sh", "-c", "touch /tmp/ready; sleep 0.3; exit 1"],
    )
    handle = httpx.post(proc.url + "/agents", json=body, timeout=60).json()
    try:
        poll(
            lambda: httpx.get(f"{proc.url}/agents/{handle['id']}", timeout=5).json(),
            lambda a: a["status"] == "error",
            timeout_s=10,
        )
        report = httpx.post(proc.url + "/gc", params={"dryRun": "true"}, timeout=30).json()
        assert handle["containerName"] in report["containers"]
        assert report["removed"] is False
        assert engine.inspect(handle["containerName"]) is not None
        removed = httpx.post(proc.url + "/gc", timeout=30).json()
        assert removed["removed"] is True and handle["containerName"] in removed["containers"]
        assert engine.inspect(handle["containerName"]) is None
        # The volume is free once the container is gone: a second pass takes it.
        second = httpx.post(proc.url + "/gc", timeout=30).json()
        assert volume in removed["volumes"] + second["volumes"]
        assert (
            network in removed["networks"] + second["networks"] or engine.network(network) is None
        )
        assert not engine.volumes(volume)
        assert engine.network(network) is None
    finally:
        engine.remove_container(handle["containerName"])
