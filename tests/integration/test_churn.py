"""200 spawns and stops in a loop leave zero containers, networks and volumes behind."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.integration.conftest import PREFIX, agent_body
from tests.support.engine import Engine
from tests.support.server import ServiceProcess

ROUNDS = 200
WORKERS = 4


def test_spawn_stop_loop_leaves_nothing_behind(
    start_service: Callable[..., ServiceProcess], engine: Engine
) -> None:
    instance = f"{PREFIX}-churn"
    proc = start_service(
        {
            "PARALLAX_INSTANCE": instance,
            "PARALLAX_NETWORK_GRACE_S": "0",
            "PARALLAX_JANITOR_INTERVAL_S": "0.2",
        }
    )
    failures: list[str] = []

    def one_round(i: int) -> None:
        # Every fifth agent gets its own network and a named volume, to be cleaned up too.
        extra = {}
        if i % 5 == 0:
            extra = {"network": f"{PREFIX}-churn-{i}", "volumes": [f"{PREFIX}-churn-{i}:/data"]}
        with httpx.Client(base_url=proc.url, timeout=60) as client:
            spawned = client.post("/agents", json=agent_body(**extra))
            if spawned.status_code != 201:
                failures.append(f"spawn {i}: {spawned.status_code} {spawned.text[:200]}")
                return
            stopped = client.delete(f"/agents/{spawned.json()['id']}")
            if stopped.status_code != 204:
                failures.append(f"stop {i}: {stopped.status_code} {stopped.text[:200]}")

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(one_round, range(ROUNDS)))
    assert failures == []
    # Volumes hold data, so only an explicit gc removes them (it also takes any network the
    # janitor has not removed yet).
    report = httpx.post(proc.url + "/gc", timeout=60).json()
    assert report["failed"] == []
    assert engine.containers(f"parallax.instance={instance}") == []
    assert [n["Name"] for n in engine.networks(f"{PREFIX}-churn")] == []
    assert [v["Name"] for v in engine.volumes(f"{PREFIX}-churn")] == []
