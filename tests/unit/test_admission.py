"""Admission: memory against what the host really has (by default) or the strict sum of limits;
CPU limits are ceilings, admitted only by the strict rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from parallax_docker.errors import ResourceLimitError
from parallax_docker.resources import NANO
from parallax_docker.runtime.admission import (
    Committed,
    admit_memory_by_available,
    committed,
)
from tests.unit.fakes import GIB
from tests.unit.harness import harness, request

MIB = 1024**2


def test_an_idle_fleet_leaves_room_when_only_a_share_of_its_limits_is_kept() -> None:
    # 300 agents of 512 MiB: 150 GiB of limits on a host with 21 GiB available.
    fleet = Committed(memory_bytes=300 * 512 * MIB, nano_cpus=300 * NANO // 2, agents=300)
    admit_memory_by_available(512 * MIB, fleet, 21 * GIB, reserve=1 * GIB, share=0.1)


def test_a_spawn_that_would_exhaust_memory_is_refused_with_the_numbers() -> None:
    fleet = Committed(memory_bytes=10 * GIB, nano_cpus=0, agents=20)
    with pytest.raises(ResourceLimitError) as refused:
        admit_memory_by_available(4 * GIB, fleet, 5 * GIB, reserve=1 * GIB, share=0.1)
    message = refused.value.message
    assert "it may use 4.0 GiB" in message
    assert "5.0 GiB available" in message and "1.0 GiB kept for the host" in message
    assert "1.0 GiB for the 20 running agents" in message and "3.0 GiB left" in message
    assert refused.value.details == {"memoryLeft": 3 * GIB, "memoryAvailable": 5 * GIB}
    assert refused.value.http_status == 507 and refused.value.code == "RESOURCE_LIMIT"


async def test_by_default_cpu_limits_are_not_admitted(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        # 4 cores, 0.5 each: the old rule (4 x overcommit 4 = 16 cores) stopped at 32.
        for n in range(40):
            await h.runtime.spawner.spawn(request(id=f"a{n}", resources={"cpu": 0.5}))
        assert committed(h.runtime.registry).nano_cpus == 20 * NANO


async def test_by_default_memory_follows_what_the_host_has_available(tmp_path: Path) -> None:
    async with harness(tmp_path, PARALLAX_MEMORY_RESERVE="1g") as h:
        h.fake.memory_available = 3 * GIB
        await h.runtime.spawner.spawn(request(id="a1", resources={"memory": "1g"}))
        # 3 GiB - 1 GiB reserve - 0.1 x 1 GiB: 1.9 GiB left.
        with pytest.raises(ResourceLimitError, match=r"1\.9 GiB left"):
            await h.runtime.spawner.spawn(request(id="a2", resources={"memory": "2g"}))
        assert h.runtime.registry.find("a2") is None and len(h.fake.containers) == 1
        h.fake.memory_available = 6 * GIB
        await h.runtime.spawner.spawn(request(id="a2", resources={"memory": "2g"}))


async def test_strict_admission_sums_the_limits_of_memory_and_cpu(tmp_path: Path) -> None:
    async with harness(tmp_path, PARALLAX_ADMISSION="limits") as h:
        # The fake host: 8 GiB and 4 cores; CPU may reach 4 x 4 = 16 cores.
        for n in range(32):
            await h.runtime.spawner.spawn(
                request(id=f"a{n}", resources={"cpu": 0.5, "memory": "64m"})
            )
        with pytest.raises(ResourceLimitError, match="not enough CPU left"):
            await h.runtime.spawner.spawn(request(id="x", resources={"cpu": 0.5, "memory": "64m"}))
    async with harness(tmp_path, PARALLAX_ADMISSION="limits") as h:
        await h.runtime.spawner.spawn(request(id="a", resources={"memory": "6g"}))
        with pytest.raises(ResourceLimitError, match="not enough memory left"):
            await h.runtime.spawner.spawn(request(id="b", resources={"memory": "3g"}))


async def test_without_the_hosts_available_memory_the_limits_are_summed(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        h.fake.memory_available = None
        await h.runtime.spawner.spawn(request(id="a", resources={"memory": "6g"}))
        with pytest.raises(ResourceLimitError, match="not enough memory left"):
            await h.runtime.spawner.spawn(request(id="b", resources={"memory": "3g"}))


async def test_stopped_agents_hold_nothing(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        h.fake.memory_available = 3 * GIB
        await h.runtime.spawner.spawn(request(id="a1", resources={"memory": "1g"}))
        await h.runtime.operations.stop("a1")
        assert committed(h.runtime.registry) == Committed(0, 0, 0)
