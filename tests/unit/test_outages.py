"""An engine restart without live-restore: the agents the engine stopped are told from exits of
their own; those with autoRestart come back, the others say why they stopped."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from parallax_docker.models import AgentStatus
from parallax_docker.runtime import lifecycle
from parallax_docker.runtime.agent_record import ENGINE_STOPPED
from parallax_docker.runtime.outages import stopped_by_engine
from tests.unit.fakes import exited_state
from tests.unit.harness import Harness, harness, request


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def _exit(h: Harness, agent_id: str, code: int, at: float, *, oom: bool = False) -> None:
    record = h.runtime.registry.get(agent_id)
    assert record.container_id is not None
    state = h.fake.containers[record.container_id]
    h.fake.containers[record.container_id] = replace(
        exited_state(state, code), finished_at=_iso(at), oom_killed=oom
    )


async def test_agents_stopped_while_the_engine_was_away_come_back_or_say_why(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, PARALLAX_STOP_GRACE_S="10") as h:
        await h.runtime.spawner.spawn(request(id="back", autoRestart=True))
        await h.runtime.spawner.spawn(request(id="plain"))
        await h.runtime.spawner.spawn(request(id="killed"))
        await h.runtime.spawner.spawn(request(id="earlier"))
        await h.runtime.spawner.spawn(request(id="crashed", autoRestart=True))
        outages = h.runtime.reconciler._outages
        assert outages is not None
        h.drain()
        lost = time.time()
        outages.lost()
        _exit(h, "back", 0, lost - 1)  # SIGTERM from the engine, exit 0: an idle agent
        _exit(h, "plain", 143, lost - 2)
        _exit(h, "killed", 137, lost - 12)  # SIGKILL after the 10 s grace
        _exit(h, "earlier", 0, lost - 3600)  # exited by itself an hour before
        _exit(h, "crashed", 1, lost - 1)  # its own failure, whatever the engine did
        h.sync()
        assert outages.synced() == 3
        handles = {a: h.runtime.registry.get(a).handle() for a in ("back", "plain", "earlier")}
        for agent_id in ("back", "plain"):
            assert handles[agent_id].status == AgentStatus.STOPPED
            assert handles[agent_id].error_code == ENGINE_STOPPED
            assert "engine stopped the agent" in (handles[agent_id].error or "")
        assert handles["earlier"].status == AgentStatus.STOPPED
        assert handles["earlier"].error_code is None
        assert h.runtime.registry.get("crashed").handle().error_code == "AGENT_EXITED"
        reasons = {
            e.agent_id: e.data.get("reason") for e in h.drain() if e.event == "agent_stopped"
        }
        assert reasons["back"] == reasons["plain"] == reasons["killed"] == "engine-stopped"
        janitor = h.runtime.janitor
        assert janitor._due(h.runtime.registry.get("back"), time.time()) == "restart"
        assert janitor._due(h.runtime.registry.get("plain"), time.time()) is None
        await janitor.sweep()
        await janitor.settle()
        back = h.runtime.registry.get("back").handle()
        assert back.status == AgentStatus.READY and back.restart_count == 1
        assert back.error_code is None
        assert h.runtime.registry.get("plain").handle().status == AgentStatus.STOPPED


async def test_without_an_outage_a_clean_exit_is_just_an_exit(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.runtime.spawner.spawn(request(id="a1", autoRestart=True))
        outages = h.runtime.reconciler._outages
        assert outages is not None
        _exit(h, "a1", 0, time.time())
        h.sync()
        assert outages.synced() == 0
        record = h.runtime.registry.get("a1")
        assert record.status == AgentStatus.STOPPED and not record.engine_stopped
        assert h.runtime.janitor._due(record, time.time()) is None


async def test_out_of_memory_and_a_stop_of_the_runtimes_own_are_not_the_engines(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        await h.runtime.spawner.spawn(request(id="a1"))
        _exit(h, "a1", 137, 1000.0)
        h.sync()
        record = h.runtime.registry.get("a1")
        assert stopped_by_engine(record, 1000.0, 1001.0, 10.0)
        assert not stopped_by_engine(record, 1020.0, 1021.0, 10.0)  # before the window
        _exit(h, "a1", 137, 1000.0, oom=True)
        h.sync()
        assert not stopped_by_engine(record, 1000.0, 1001.0, 10.0)
        _exit(h, "a1", 137, 1000.0)
        h.sync()
        lifecycle.stop_begun(record)
        assert not stopped_by_engine(record, 1000.0, 1001.0, 10.0)
