"""The janitor's rules (what is due for an agent when) and its passes on the fake platform."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from parallax_docker.models import AgentStatus
from parallax_docker.runtime import lifecycle
from parallax_docker.runtime.clock import parse_engine_time
from parallax_docker.runtime.journal import Journal
from tests.unit.fakes import exited_state
from tests.unit.harness import Harness, harness, request

STARTED = "2026-01-01T00:00:01Z"


def _started() -> float:
    started = parse_engine_time(STARTED)
    assert started is not None
    return started


async def _ready(h: Harness, agent_id: str = "a1", **fields: object) -> None:
    await h.runtime.spawner.spawn(request(id=agent_id, **fields))


async def test_an_agent_past_its_lifetime_is_stopped_with_reason_timeout(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await _ready(h, resources={"timeout": 60})
        record = h.runtime.registry.get("a1")
        # Created "now"; its container started long ago: the later of the two counts.
        assert h.runtime.janitor._due(record, _started() + 61) is None
        created = parse_engine_time(record.labels.created_at)
        assert created is not None
        assert h.runtime.janitor._due(record, created + 61) == "lifetime"
        h.drain()
        await h.runtime.janitor.sweep(created + 61)
        await h.runtime.janitor.settle()
        stopped = [e for e in h.drain() if e.event == "agent_stopped"]
        assert stopped[0].data["reason"] == "timeout"
        assert h.runtime.registry.find("a1") is None


async def test_an_idle_agent_is_stopped_but_a_busy_one_is_not(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await _ready(h, idleTimeout=30)
        record = h.runtime.registry.get("a1")
        later = record.last_activity + 31
        assert h.runtime.janitor._due(record, later) == "idle"
        lifecycle.turn_started(record, now=record.last_activity)
        assert h.runtime.janitor._due(record, later) is None


async def test_a_spawn_cut_short_without_a_journal_entry_is_removed_after_a_grace(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, PARALLAX_ORPHAN_GRACE_S="30") as h:
        await _ready(h)
        record = h.runtime.registry.get("a1")
        assert record.state is not None
        created_state = replace(record.state, status="created", running=False)
        lifecycle.observed(record, created_state)
        created = parse_engine_time(created_state.created_at)
        assert created is not None
        assert h.runtime.janitor._due(record, created + 29) is None
        assert h.runtime.janitor._due(record, created + 31) == "orphan"


async def test_a_crashed_auto_restart_agent_is_restarted_with_a_growing_back_off(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, PARALLAX_AUTO_RESTART_MAX="2") as h:
        await _ready(h, autoRestart=True)
        record = h.runtime.registry.get("a1")
        assert record.state is not None
        lifecycle.observed(record, exited_state(record.state, 1))
        assert record.status == AgentStatus.ERROR
        now = 2_000_000_000.0
        assert h.runtime.janitor._due(record, now) == "restart"
        lifecycle.restart_begun(record, automatic=True)
        record.restart_times[-1] = now
        lifecycle.bring_back_failed(record, exited_state(record.state, 1))
        assert h.runtime.janitor._due(record, now + 0.5) is None  # back-off: 1 s
        assert h.runtime.janitor._due(record, now + 1.5) == "restart"
        lifecycle.restart_begun(record, automatic=True)
        record.restart_times[-1] = now + 1.5
        lifecycle.bring_back_failed(record, exited_state(record.state, 1))
        assert h.runtime.janitor._due(record, now + 100) is None  # the cap: 2 in the window


async def test_an_exited_agent_is_removed_after_the_retention(tmp_path: Path) -> None:
    async with harness(tmp_path, PARALLAX_EXITED_RETENTION_S="300") as h:
        await _ready(h)
        record = h.runtime.registry.get("a1")
        assert record.state is not None
        lifecycle.observed(record, exited_state(record.state, 0))
        finished = parse_engine_time(exited_state(record.state, 0).finished_at)
        assert finished is not None
        assert h.runtime.janitor._due(record, finished + 299) is None
        assert h.runtime.janitor._due(record, finished + 301) == "expire"


async def test_agents_under_an_operation_are_left_alone(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await _ready(h, idleTimeout=1)
        record = h.runtime.registry.get("a1")
        lifecycle.stop_begun(record)
        assert h.runtime.janitor._due(record, record.last_activity + 100) is None


async def test_a_pass_takes_over_operations_nobody_is_finishing(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        Journal(h.runtime.journal.folder).begin("execution", "e1", volumes=[])
        await h.runtime.janitor.sweep()
        await h.runtime.recovery.wait()
        assert h.runtime.journal.orphans() == []


async def test_managed_networks_no_agent_uses_are_removed_after_their_grace(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, PARALLAX_NETWORK_GRACE_S="0") as h:
        h.fake.networks["team-a"] = dict(h.runtime.selector)
        h.fake.networks[h.runtime.settings.docker_network] = dict(h.runtime.selector)
        removed = await h.runtime.janitor.sweep_networks(2_000_000_000.0)
        assert removed == ["team-a"]
        assert h.runtime.settings.docker_network in h.fake.networks
