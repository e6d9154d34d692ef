"""The warm pool on the real engine: claims, fallbacks, refills, restarts and clean-up.

Each test starts its own service with ``PARALLAX_POOL`` on its own instance. Pooled requests
carry no labels (labels cannot be added to a running container, so a labelled request starts
cold); everything of the instance is removed at the end instead.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import PREFIX
from tests.support.engine import Engine
from tests.support.images import AGENT_IMAGE, BUSYBOX_IMAGE
from tests.support.server import ServiceProcess

Start = Callable[..., ServiceProcess]
MIB = 1024 * 1024


@pytest.fixture
def pool_env(tmp_path: Path) -> dict[str, str]:
    return {
        "PARALLAX_POOL": f"custom={AGENT_IMAGE}:1",
        "PARALLAX_STATE_DIR": str(tmp_path / "state"),
        "PARALLAX_READY_TIMEOUT_S": "30",
    }


@pytest.fixture
def instances(engine: Engine) -> Iterator[list[str]]:
    """Instances a test used; all their containers are removed at the end."""
    used: list[str] = []
    yield used
    for instance in used:
        for container in engine.containers(f"parallax.instance={instance}"):
            engine.remove_container(container["Id"])


@pytest.fixture
def pooled_service(
    start_service: Start, pool_env: dict[str, str], instances: list[str]
) -> ServiceProcess:
    proc = start_service(pool_env)
    instances.append(proc.env["PARALLAX_INSTANCE"])
    return proc


def idle_pooled(engine: Engine, instance: str) -> list[dict[str, Any]]:
    """The instance's pooled containers still waiting for a claim (not yet renamed)."""
    return [
        c
        for c in engine.containers(f"parallax.instance={instance}", "parallax.pool=true")
        if c["State"] == "running" and c["Names"][0].startswith("/parallax-pool-")
    ]


def wait_idle(engine: Engine, instance: str, count: int, timeout_s: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = idle_pooled(engine, instance)
        if len(found) >= count:
            return [c["Id"] for c in found]
        time.sleep(0.1)
    raise AssertionError(f"the pool of {instance} did not fill to {count}")


def pool_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"p-{uuid.uuid4().hex[:10]}",
        "type": "custom",
        "image": AGENT_IMAGE,
        "resources": {"memory": "96m", "cpu": 0.3},
    }
    body.update(fields)
    return body


def spawn_on(proc: ServiceProcess, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(proc.url + "/agents", json=body, timeout=60)
    assert response.status_code == 201, response.text
    handle: dict[str, Any] = response.json()
    return handle


def test_a_claim_is_the_pooled_container_hardened_with_the_requested_limits(
    pooled_service: ServiceProcess, engine: Engine
) -> None:
    instance = pooled_service.env["PARALLAX_INSTANCE"]
    [pooled] = wait_idle(engine, instance, 1)
    handle = spawn_on(pooled_service, pool_body())
    assert handle["containerId"] == pooled
    assert handle["status"] == "ready"
    assert handle["containerName"] == f"parallax-{handle['id']}"
    assert handle["resources"]["memoryBytes"] == 96 * MIB

    inspect = engine.inspect(pooled)
    assert inspect is not None
    host = inspect["HostConfig"]
    assert inspect["Name"] == f"/parallax-{handle['id']}"
    assert (host["Memory"], host["MemorySwap"], host["NanoCpus"]) == (96 * MIB, 96 * MIB, 3 * 10**8)
    assert host["ReadonlyRootfs"] is True and host["Privileged"] is False
    assert host["CapDrop"] == ["ALL"] and host["CapAdd"] in (None, [])
    assert any(opt.startswith("no-new-privileges") for opt in host["SecurityOpt"])
    assert host["Init"] is True and host["PidsLimit"] == 512
    assert inspect["Config"]["User"] == "agent"
    [(network, endpoint)] = inspect["NetworkSettings"]["Networks"].items()
    assert network == f"{PREFIX}-net"
    assert {handle["name"], handle["containerName"], handle["id"]} <= set(endpoint["Aliases"])


def test_a_claimed_agent_answers_to_its_name_on_the_network(
    pooled_service: ServiceProcess,
    engine: Engine,
    spawn: Callable[..., dict[str, Any]],
) -> None:
    wait_idle(engine, pooled_service.env["PARALLAX_INSTANCE"], 1)
    claimed = spawn_on(pooled_service, pool_body())
    # A cold agent of the session's service, on the same network.
    other = spawn()
    for alias in (claimed["name"], claimed["id"], claimed["containerName"]):
        code, output = engine.exec(other["containerName"], "nslookup", alias)
        assert code == 0, output


def test_secrets_delivered_at_claim_reach_the_agent_and_stay_out_of_inspect(
    pooled_service: ServiceProcess, engine: Engine
) -> None:
    wait_idle(engine, pooled_service.env["PARALLAX_INSTANCE"], 1)
    secret = f"pool-secret-{uuid.uuid4().hex}"
    handle = spawn_on(
        pooled_service,
        pool_body(env={"POOL_SECRET": secret}, credentials={"anthropicKey": secret + "-k"}),
    )
    assert handle["envKeys"] == ["ANTHROPIC_API_KEY", "POOL_SECRET"]
    # The agent's process (the image's command, started at claim) has them in its environment.
    code, output = engine.exec(
        handle["containerName"],
        "sh",
        "-c",
        "for p in /proc/[0-9]*; do tr '\\0' '\\n' < $p/environ 2>/dev/null; done",
    )
    assert code == 0
    assert f"POOL_SECRET={secret}" in output.splitlines()
    assert f"ANTHROPIC_API_KEY={secret}-k" in output.splitlines()
    inspect = json.dumps(engine.inspect(handle["containerName"]))
    assert secret not in inspect
    agent = httpx.get(f"{pooled_service.url}/agents/{handle['id']}").text
    assert secret not in agent
    assert secret not in pooled_service.logs()


@pytest.mark.parametrize(
    "fields",
    [
        {"command": ["/bin/sh", "-c", "touch /tmp/ready; exec sleep 1000"]},
        {"workdir": "/tmp"},
        {"labels": {"team": "a"}},
        {"image": BUSYBOX_IMAGE, "command": ["sleep", "1000"]},
        {"network": "none"},
    ],
    ids=["command", "workdir", "labels", "image", "network"],
)
def test_a_request_the_pool_cannot_serve_starts_cold(
    pooled_service: ServiceProcess, engine: Engine, fields: dict[str, Any]
) -> None:
    instance = pooled_service.env["PARALLAX_INSTANCE"]
    [pooled] = wait_idle(engine, instance, 1)
    handle = spawn_on(pooled_service, pool_body(**fields))
    assert handle["containerId"] != pooled
    assert handle["status"] == "ready"
    # The pooled container is still there, waiting for a request it can serve.
    assert [c["Id"] for c in idle_pooled(engine, instance)] == [pooled]


def test_the_pool_refills_after_a_claim(pooled_service: ServiceProcess, engine: Engine) -> None:
    instance = pooled_service.env["PARALLAX_INSTANCE"]
    [first] = wait_idle(engine, instance, 1)
    handle = spawn_on(pooled_service, pool_body())
    assert handle["containerId"] == first
    [refill] = wait_idle(engine, instance, 1)
    assert refill != first
    second = spawn_on(pooled_service, pool_body())
    assert second["containerId"] == refill


def test_pooled_containers_are_not_agents(pooled_service: ServiceProcess, engine: Engine) -> None:
    wait_idle(engine, pooled_service.env["PARALLAX_INSTANCE"], 1)
    body = httpx.get(pooled_service.url + "/agents").json()
    assert body == {"agents": [], "count": 0}


def test_a_claimed_agent_survives_a_restart_of_the_service(
    start_service: Start, pool_env: dict[str, str], instances: list[str], engine: Engine
) -> None:
    first = start_service(pool_env)
    instance = first.env["PARALLAX_INSTANCE"]
    instances.append(instance)
    wait_idle(engine, instance, 1)
    handle = spawn_on(first, pool_body(role="reviewer", capabilities=["code", "review"]))
    first.stop()
    # The idle pooled container went with the service; the claimed agent keeps running.
    assert idle_pooled(engine, instance) == []
    running = engine.inspect(handle["containerId"])
    assert running is not None and running["State"]["Running"]

    second = start_service({**pool_env, "PARALLAX_INSTANCE": instance})
    # Adopted agents Docker still calls "starting" are probed once by the janitor.
    deadline = time.monotonic() + 10
    while True:
        agent = httpx.get(f"{second.url}/agents/{handle['id']}").json()
        if agent["status"] != "starting" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert agent["status"] == "ready"
    for field in ("name", "type", "role", "capabilities", "containerName", "containerId"):
        assert agent[field] == handle[field], field
    assert agent["resources"]["memoryBytes"] == 96 * MIB
    listed = httpx.get(second.url + "/agents").json()
    assert [a["id"] for a in listed["agents"]] == [handle["id"]]

    # Engine events still reach it: killed behind the service's back, it reads as an error.
    engine.kill(handle["containerId"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = httpx.get(f"{second.url}/agents/{handle['id']}").json()["status"]
        if status == "error":
            break
        time.sleep(0.05)
    assert status == "error"
    assert httpx.delete(f"{second.url}/agents/{handle['id']}").status_code == 204
    assert engine.inspect(handle["containerId"]) is None


def test_no_pooled_container_is_left_after_the_service_stops(
    pooled_service: ServiceProcess, engine: Engine
) -> None:
    instance = pooled_service.env["PARALLAX_INSTANCE"]
    wait_idle(engine, instance, 1)
    handle = spawn_on(pooled_service, pool_body())
    wait_idle(engine, instance, 1)
    assert httpx.delete(f"{pooled_service.url}/agents/{handle['id']}").status_code == 204
    pooled_service.stop()
    assert engine.containers(f"parallax.instance={instance}") == []


def test_gc_removes_pooled_containers_no_pool_holds(
    start_service: Start, pool_env: dict[str, str], instances: list[str], engine: Engine
) -> None:
    crashed = start_service(pool_env)
    instance = crashed.env["PARALLAX_INSTANCE"]
    instances.append(instance)
    [pooled] = wait_idle(engine, instance, 1)
    crashed.stop(signal.SIGKILL)
    # The same instance without a pool: the crashed run's pooled container is a leftover.
    plain = start_service(
        {"PARALLAX_INSTANCE": instance, "PARALLAX_STATE_DIR": pool_env["PARALLAX_STATE_DIR"]}
    )
    report = httpx.post(f"{plain.url}/gc", params={"dryRun": "true"}).json()
    name = engine.inspect(pooled)["Name"].lstrip("/")  # type: ignore[index]
    assert name in report["containers"]
    assert engine.inspect(pooled) is not None
    removed = httpx.post(f"{plain.url}/gc").json()
    assert name in removed["containers"] and removed["failed"] == []
    assert engine.inspect(pooled) is None


def test_a_cold_spawn_with_the_pool_empty_still_succeeds(
    start_service: Start, pool_env: dict[str, str], instances: list[str], engine: Engine
) -> None:
    proc = start_service({**pool_env, "PARALLAX_POOL": f"custom={AGENT_IMAGE}:1"})
    instances.append(proc.env["PARALLAX_INSTANCE"])
    wait_idle(engine, proc.env["PARALLAX_INSTANCE"], 1)
    first = spawn_on(proc, pool_body())
    # Claimed; the refill has not finished yet, so this one starts cold at once.
    second = spawn_on(proc, pool_body())
    assert first["containerId"] != second["containerId"]
    assert httpx.get(proc.url + "/agents").json()["count"] == 2
    assert first["status"] == second["status"] == "ready"


def test_a_claimed_agents_lifetime_counts_from_the_claim(
    pooled_service: ServiceProcess, engine: Engine
) -> None:
    instance = pooled_service.env["PARALLAX_INSTANCE"]
    wait_idle(engine, instance, 1)
    time.sleep(3)  # the pooled container has been up longer than the agent's lifetime
    handle = spawn_on(pooled_service, pool_body(resources={"memory": "96m", "timeout": 3}))
    time.sleep(1.5)  # a janitor pass or more
    assert httpx.get(f"{pooled_service.url}/agents/{handle['id']}").status_code == 200
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if httpx.get(f"{pooled_service.url}/agents/{handle['id']}").status_code == 404:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the claimed agent outlived its lifetime")
