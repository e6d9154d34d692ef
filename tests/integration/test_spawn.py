"""Spawning through the HTTP API on the real engine: lifecycle, identity, hardening."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.integration.conftest import SESSION, agent_body, managed_containers
from tests.support.engine import Engine
from tests.support.images import BUSYBOX_IMAGE

Spawn = Callable[..., dict[str, Any]]


def test_spawn_returns_ready_handle_with_generated_id(spawn: Spawn, engine: Engine) -> None:
    handle = spawn()
    assert handle["status"] == "ready"
    assert re.fullmatch(r"agent-[0-9a-f]{12}", handle["id"])
    assert handle["containerName"] == f"parallax-{handle['id']}"
    container = engine.inspect(handle["containerName"])
    assert container is not None and container["State"]["Running"]
    assert container["Id"] == handle["containerId"]


def test_spawn_uses_client_id_for_container_name(spawn: Spawn, engine: Engine) -> None:
    agent_id = f"agent-{SESSION}-x"
    handle = spawn(id=agent_id)
    assert handle["id"] == agent_id
    assert engine.inspect(f"parallax-{agent_id}") is not None


def test_container_labels_hold_the_handle(spawn: Spawn, engine: Engine) -> None:
    handle = spawn(role="reviewer", capabilities=["code", "review"], reportsTo="lead")
    labels = engine.inspect(handle["containerName"])["Config"]["Labels"]  # type: ignore[index]
    assert labels["parallax.managed"] == "true"
    assert labels["parallax.agent.id"] == handle["id"]
    assert labels["parallax.agent.name"] == handle["name"]
    assert labels["parallax.agent.type"] == "custom"
    assert labels["parallax.agent.role"] == "reviewer"
    assert labels["parallax.agent.reports-to"] == "lead"
    assert labels["test-session"] == SESSION


def test_hardening_is_applied_by_default(spawn: Spawn, engine: Engine) -> None:
    handle = spawn()
    info = engine.inspect(handle["containerName"])
    assert info is not None
    host = info["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["Privileged"] is False
    assert host["Init"] is True
    assert host["PidsLimit"] > 0
    assert host["LogConfig"]["Type"] == "json-file"
    assert host["LogConfig"]["Config"]["max-size"] and host["LogConfig"]["Config"]["max-file"]
    assert set(host["Tmpfs"]) >= {"/tmp", "/home/agent", "/workspace", "/run/parallax"}
    assert info["Config"]["User"] in ("agent", "1000", "1000:1000", "")
    code, out = engine.exec(handle["containerName"], "id", "-u")
    assert code == 0 and out.strip() == "1000"
    code, _ = engine.exec(handle["containerName"], "touch", "/etc/owned")
    assert code != 0, "root filesystem must be read-only"
    code, _ = engine.exec(
        handle["containerName"], "touch", "/tmp/ok", "/home/agent/ok", "/workspace/ok"
    )
    assert code == 0, "tmp, home and workspace must be writable"


def test_limits_are_hard_limits(spawn: Spawn, engine: Engine) -> None:
    handle = spawn(resources={"memory": "96m", "cpu": "500m"})
    host = engine.inspect(handle["containerName"])["HostConfig"]  # type: ignore[index]
    assert host["Memory"] == 96 * 1024 * 1024
    assert host["MemorySwap"] == host["Memory"], "no swap beyond the memory limit"
    assert host["NanoCpus"] == 500_000_000
    assert handle["resources"]["memoryBytes"] == 96 * 1024 * 1024
    assert handle["resources"]["cpu"] == 0.5


def test_defaults_come_from_settings(api: httpx.Client, spawn: Spawn, engine: Engine) -> None:
    body = agent_body()
    del body["resources"]
    response = api.post("/agents", json=body)
    assert response.status_code == 201, response.text
    handle = response.json()
    try:
        host = engine.inspect(handle["containerName"])["HostConfig"]  # type: ignore[index]
        assert host["Memory"] == 512 * 1024 * 1024
        assert host["NanoCpus"] == 500_000_000
    finally:
        engine.remove_container(handle["containerName"])


def test_ready_waits_for_the_image_health_check(spawn: Spawn, engine: Engine) -> None:
    # The test image's HEALTHCHECK passes once /tmp/ready exists; this command makes it late.
    started = time.monotonic()
    handle = spawn(
        command=[
            "/bin/sh",
            "-c",
            "trap 'exit 0' TERM; sleep 1.5; touch /tmp/ready; while true; do sleep 1; done",
        ]
    )
    elapsed = time.monotonic() - started
    assert handle["status"] == "ready"
    assert elapsed >= 1.4, "ready came before the health check could pass"
    code, _ = engine.exec(handle["containerName"], "test", "-f", "/tmp/ready")
    assert code == 0


def test_image_without_healthcheck_is_ready_when_running(spawn: Spawn) -> None:
    handle = spawn(image=BUSYBOX_IMAGE, command=["sleep", "600"])
    assert handle["status"] == "ready"


def test_agent_that_exits_before_ready_fails_and_is_removed(
    api: httpx.Client, engine: Engine
) -> None:
    before = managed_containers(engine)
    response = api.post("/agents", json=agent_body(command=["/bin/sh", "-c", "exit 3"]))
    assert response.status_code == 502
    body = response.json()
    assert body["code"] == "HEALTH_CHECK_FAILED"
    assert "3" in body["error"]
    assert managed_containers(engine) == before


def test_agent_never_healthy_times_out_and_is_removed(
    start_service: Callable[..., Any], engine: Engine
) -> None:
    proc = start_service({"PARALLAX_READY_TIMEOUT_S": "1.5"})
    before = managed_containers(engine)
    body = agent_body(command=["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"])
    response = httpx.post(proc.url + "/agents", json=body, timeout=60)
    assert response.status_code == 502
    assert response.json()["code"] == "HEALTH_CHECK_FAILED"
    assert managed_containers(engine) == before


def test_missing_image_is_image_not_found_with_build_hint(
    api: httpx.Client, engine: Engine
) -> None:
    before = managed_containers(engine)
    response = api.post("/agents", json=agent_body(image="parallax-test/none:latest"))
    assert response.status_code == 404
    assert response.json()["code"] == "IMAGE_NOT_FOUND"
    assert managed_containers(engine) == before


def test_missing_agent_type_image_names_the_build_command(
    start_service: Callable[..., Any], engine: Engine
) -> None:
    proc = start_service({"PARALLAX_IMAGE_PREFIX": f"ptest-{SESSION}/none-"})
    body = agent_body(type="codex")
    del body["image"]
    response = httpx.post(proc.url + "/agents", json=body, timeout=60)
    assert response.status_code == 404
    payload = response.json()
    assert payload["code"] == "IMAGE_NOT_FOUND"
    assert "parallax-docker images build codex" in payload["resolution"]


def test_duplicate_id_is_conflict(spawn: Spawn, api: httpx.Client) -> None:
    first = spawn(id=f"dup-{SESSION}")
    response = api.post("/agents", json=agent_body(id=first["id"]))
    assert response.status_code == 409
    assert response.json()["code"] == "CONFLICT"


def test_duplicate_name_is_conflict(spawn: Spawn, api: httpx.Client) -> None:
    first = spawn()
    response = api.post("/agents", json=agent_body(name=first["name"]))
    assert response.status_code == 409
    assert response.json()["code"] == "CONFLICT"


def test_routes_are_served_under_api_prefix(spawn: Spawn, api: httpx.Client) -> None:
    handle = spawn()
    response = api.get(f"/api/agents/{handle['id']}")
    assert response.status_code == 200
    assert response.json()["id"] == handle["id"]
    assert api.get("/api/health").status_code == 200
