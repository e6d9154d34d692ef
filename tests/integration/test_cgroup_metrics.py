"""Agent metrics read from the cgroup files agree with a known load and with the engine's stats.

A service reads an agent's counters straight from the host's cgroup tree; a service told
there is none (``PARALLAX_CGROUP_ROOT=``) asks the engine instead. Both must report the same
usage for the same load.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.conftest import agent_body
from tests.support.engine import Engine
from tests.support.server import ServiceProcess

MIB = 1024 * 1024
# 48 MiB in the agent's /tmp (a tmpfs, charged to its memory cgroup), then one busy core.
_LOAD = (
    "dd if=/dev/zero of=/tmp/blob bs=1M count=48 2>/dev/null; touch /tmp/ready; "
    "trap 'exit 0' TERM; while :; do :; done"
)


def _engine_memory(engine: Engine, container: str) -> int:
    response = engine.http.get(
        f"/containers/{container}/stats", params={"stream": "0", "one-shot": "1"}
    )
    response.raise_for_status()
    memory = response.json()["memory_stats"]
    stats = memory.get("stats") or {}
    cache = stats.get("total_inactive_file", stats.get("inactive_file", 0))
    return int(memory["usage"]) - int(cache)


def _metrics_after(api: httpx.Client, agent_id: str, seconds: float) -> dict[str, Any]:
    assert api.get(f"/agents/{agent_id}/metrics").status_code == 200
    time.sleep(seconds)
    response = api.get(f"/agents/{agent_id}/metrics")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _check_load(body: dict[str, Any], engine: Engine, container: str) -> None:
    # One busy loop under a half-core limit: about 100% of the limit, 50% of one core. Other
    # test sessions share the machine, so the lower bound is loose.
    assert 30 <= body["cpu"] <= 115, body
    assert body["cpuLimit"] == 0.5
    assert 48 * MIB <= body["memory"] <= 128 * MIB, body
    assert body["memoryLimit"] == 128 * MIB
    assert abs(body["memory"] - _engine_memory(engine, container)) <= 4 * MIB
    assert body["pids"] >= 2


def test_cgroup_metrics_agree_with_a_known_load(
    spawn: Callable[..., dict[str, Any]], api: httpx.Client, engine: Engine
) -> None:
    handle = spawn(command=["/bin/sh", "-c", _LOAD], resources={"memory": "128m", "cpu": 0.5})
    body = _metrics_after(api, handle["id"], 1.0)
    _check_load(body, engine, handle["containerName"])


def test_an_idle_agent_reads_near_zero_cpu(
    spawn: Callable[..., dict[str, Any]], api: httpx.Client
) -> None:
    handle = spawn()
    body = _metrics_after(api, handle["id"], 0.5)
    assert body["cpu"] < 20, body
    assert 0 < body["memory"] < 32 * MIB
    assert body["network"]["rxBytes"] >= 0


@pytest.fixture
def engine_stats_service(start_service: Callable[..., ServiceProcess]) -> ServiceProcess:
    return start_service({"PARALLAX_CGROUP_ROOT": ""})


def test_without_cgroup_files_metrics_come_from_the_engine(
    engine_stats_service: ServiceProcess, engine: Engine
) -> None:
    with httpx.Client(base_url=engine_stats_service.url, timeout=60) as api:
        body = agent_body(
            command=["/bin/sh", "-c", _LOAD], resources={"memory": "128m", "cpu": 0.5}
        )
        response = api.post("/agents", json=body)
        assert response.status_code == 201, response.text
        handle = response.json()
        try:
            metrics = _metrics_after(api, handle["id"], 1.0)
            _check_load(metrics, engine, handle["containerName"])
        finally:
            engine.remove_container(handle["containerName"])
