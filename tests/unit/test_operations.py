"""Stop, restart and removal on the fake platform, with their journal entries and events."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from parallax_docker.errors import (
    AgentNotFoundError,
    EngineError,
    HealthCheckFailedError,
    SocketError,
)
from parallax_docker.models import AgentStatus
from tests.unit.fakes import exited_state
from tests.unit.harness import harness, request


async def test_a_stop_removes_the_agent_and_a_repeated_stop_succeeds(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.runtime.spawner.spawn(request(id="a1", env={"KEY": "v"}))
        h.drain()
        await h.runtime.operations.stop("a1")
        assert h.fake.containers == {} and h.runtime.registry.find("a1") is None
        assert h.deployment.fake_secrets.delivered == {}
        (event,) = h.drain()
        assert event.event == "agent_stopped" and event.data["reason"] == "deleted"
        await h.runtime.operations.stop("a1")  # the caller's retry: nothing left to do
        with pytest.raises(AgentNotFoundError):
            await h.runtime.operations.stop("never-was")


async def test_two_stops_of_one_agent_are_one_stop(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.runtime.spawner.spawn(request(id="a1"))
        gate = asyncio.Event()
        h.fake.hold["stop"] = gate
        first = asyncio.create_task(h.runtime.operations.stop("a1"))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(h.runtime.operations.stop("a1"))
        await asyncio.sleep(0.01)
        gate.set()
        await asyncio.gather(first, second)
        assert len(h.fake.called("stop")) == 1


async def test_a_stop_the_engine_cut_short_is_finished_by_recovery(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.runtime.spawner.spawn(request(id="a1"))
        h.fake.fail["stop"] = SocketError("engine gone")
        with pytest.raises(SocketError):
            await h.runtime.operations.stop("a1")
        assert h.runtime.registry.get("a1").status == AgentStatus.STOPPING
        del h.fake.fail["stop"]
        h.drain()
        h.sync()
        await h.runtime.recovery.wait()
        assert h.runtime.registry.find("a1") is None and h.fake.containers == {}
        assert [e.data.get("reason") for e in h.drain() if e.event == "agent_stopped"] == [
            "deleted"
        ]


async def test_a_stop_the_engine_refused_leaves_the_agent_as_it_is(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.runtime.spawner.spawn(request(id="a1"))
        h.fake.fail["stop"] = EngineError("refused")
        with pytest.raises(EngineError):
            await h.runtime.operations.stop("a1")
        record = h.runtime.registry.get("a1")
        assert record.status == AgentStatus.READY and not record.stopping
        assert h.runtime.journal.orphans() == []


async def test_a_restart_brings_the_agent_back_ready(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.runtime.spawner.spawn(request(id="a1"))
        h.drain()
        handle = await h.runtime.operations.restart("a1")
        assert handle.status == AgentStatus.READY and h.fake.called("restart")
        assert h.names() == ["agent_ready"]
        assert h.runtime.journal.orphans() == []


async def test_a_restart_that_exits_reports_the_crash(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.runtime.spawner.spawn(request(id="a1"))
        container = h.container_of("a1")
        h.fake.exec_results = {}
        h.drain()

        async def crash(container_id: str, timeout_s: float) -> None:
            h.fake.containers[container_id] = exited_state(h.fake.containers[container_id], 3)

        h.fake.restart = crash  # type: ignore[method-assign]
        with pytest.raises(HealthCheckFailedError):
            await h.runtime.operations.restart("a1")
        record = h.runtime.registry.get("a1")
        assert record.status == AgentStatus.ERROR and not record.in_operation
        assert "agent_error" in h.names()
        assert h.fake.containers[container.id].exit_code == 3


async def test_an_automatic_restart_starts_the_crashed_container_and_counts(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.runtime.spawner.spawn(request(id="a1", autoRestart=True))
        container = h.container_of("a1")
        crashed = exited_state(container, 1)
        h.fake.containers[container.id] = crashed
        h.runtime.reconciler._observer.observe(crashed)
        await h.runtime.operations.auto_restart(h.runtime.registry.get("a1"))
        record = h.runtime.registry.get("a1")
        assert record.status == AgentStatus.READY and record.restart_count == 1
        assert h.fake.called("start")[-1] == container.id


async def test_removing_an_unwanted_container_reports_why(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.runtime.spawner.spawn(request(id="a1"))
        h.drain()
        await h.runtime.operations.remove_container(
            h.runtime.registry.get("a1"), "the agent never became ready"
        )
        (event,) = h.drain()
        assert event.event == "agent_error"
        assert event.data["error"] == "the agent never became ready"
        assert h.runtime.registry.find("a1") is None


async def test_metrics_come_from_the_platforms_usage(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.runtime.spawner.spawn(request(id="a1"))
        metrics = await h.runtime.queries.metrics("a1")
        assert metrics.memory == 1024 and len(h.fake.called("usage")) == 2
