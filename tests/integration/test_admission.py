"""Admission on the real host: an idle fleet is let in past what the sum of its limits would
allow; a spawn that would really exhaust memory is refused with RESOURCE_LIMIT and the numbers.

The strict rule (PARALLAX_ADMISSION=limits) is test_reliability.py's."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.integration.conftest import agent_body, managed_containers
from tests.support.engine import Engine
from tests.support.polling import poll
from tests.support.server import ServiceProcess

StartService = Callable[..., ServiceProcess]
GIB = 1024**3
MIB = 1024**2


def _available() -> int:
    with open("/proc/meminfo", "rb") as meminfo:
        for line in meminfo:
            if line.startswith(b"MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no MemAvailable")


@pytest.mark.slow
def test_an_idle_fleet_is_admitted_past_the_sum_of_its_limits(
    start_service: StartService, engine: Engine
) -> None:
    info = engine.http.get("/info").json()
    # The old rule: CPU limits summed against 4x the cores, memory limits against the host.
    by_cpu = int(info["NCPU"] * 4 / 0.5)
    by_memory = int(info["MemTotal"] // (512 * MIB))
    count = max(by_cpu, by_memory) + 3
    proc = start_service()
    body = {"resources": {"memory": "512m", "cpu": 0.5}}

    def spawn(_: int) -> httpx.Response:
        return httpx.post(proc.url + "/agents", json=agent_body(**body), timeout=120)

    made: list[str] = []
    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(spawn, range(count)))
        made = [a.json()["containerName"] for a in answers if a.status_code == 201]
        refused = [a.text for a in answers if a.status_code != 201]
        assert refused == [] and len(made) == count
        listed = httpx.get(proc.url + "/agents", timeout=30).json()
        assert listed["count"] == count
        assert sum(a["resources"]["memoryBytes"] for a in listed["agents"]) > info["MemTotal"]
    finally:
        for name in made:
            engine.remove_container(name)


def test_a_spawn_that_would_really_exhaust_memory_is_refused_with_the_numbers(
    start_service: StartService, engine: Engine
) -> None:
    # Leave this service 3 GiB of the host's available memory above its reserve.
    reserve_mib = (_available() - 3 * GIB) // MIB
    proc = start_service(
        {"PARALLAX_MEMORY_RESERVE": f"{reserve_mib}m", "PARALLAX_TMPFS_SIZE": "2g"}
    )
    made: list[str] = []

    def spawn(**fields: Any) -> httpx.Response:
        response = httpx.post(proc.url + "/agents", json=agent_body(**fields), timeout=120)
        if response.status_code == 201:
            made.append(response.json()["containerName"])
        return response

    try:
        # While the host has the room, a 2 GiB agent is admitted (3 GiB left).
        assert spawn(resources={"memory": "2g"}).status_code == 201
        engine.remove_container(made.pop())
        # An agent that really takes 1.8 GiB (a file in its tmpfs is memory).
        hog = spawn(
            resources={"memory": "2g"},
            command=[
                "/bin/sh",
                "-c",
                "dd if=/dev/zero of=/tmp/hog bs=1M count=1800 && touch /tmp/ready && "
                "exec sleep 100000",
            ],
        )
        assert hog.status_code == 201, hog.text
        poll(_available, lambda left: left < reserve_mib * MIB + 2000 * MIB, timeout_s=60)
        before = managed_containers(engine)
        refused = spawn(resources={"memory": "2g"})
        assert refused.status_code == 507, refused.text
        answer = refused.json()
        assert answer["code"] == "RESOURCE_LIMIT" and answer["resolution"]
        assert "it may use 2.0 GiB" in answer["error"]
        assert "kept for the host" in answer["error"] and "left" in answer["error"]
        assert answer["details"]["memoryLeft"] < 2 * GIB
        assert managed_containers(engine) == before
        # A small agent still fits in what is left.
        assert spawn(resources={"memory": "256m"}).status_code == 201
    finally:
        for name in made:
            engine.remove_container(name)
