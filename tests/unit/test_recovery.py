"""Recovery after a crash: each kind of journaled operation is finished or undone, with events.

The "crash" is a journal written by an earlier runtime and containers left on the fake engine;
the runtime under test starts with an empty registry, syncs and recovers.
"""

from __future__ import annotations

from pathlib import Path

from parallax_docker.backends.base import ExecResult, VolumeInfo
from parallax_docker.errors import EngineError, SocketError
from parallax_docker.models import AgentStatus
from parallax_docker.runtime.journal import Journal
from parallax_docker.runtime.spec import container_spec, plan_agent
from tests.unit.fakes import image, running_state
from tests.unit.harness import Harness, harness, request


async def _crashed_spawn(h: Harness, agent_id: str, *, created: bool = True) -> str | None:
    """What a spawn cut short by a crash leaves: a journal entry, maybe a created container."""
    plan = plan_agent(request(id=agent_id), h.runtime.settings, host_memory=1 << 40, host_cpus=64)
    earlier = Journal(h.runtime.journal.folder)
    intent = earlier.begin("spawn", agent_id, labels=plan.labels.encode())
    if not created:
        return None
    container_id = await h.fake.create(container_spec(plan, image(), h.runtime.settings))
    earlier.note(intent, container_id=container_id)
    return container_id


async def test_a_spawn_cut_short_after_create_is_finished(tmp_path: Path) -> None:
    async with harness(tmp_path, ready=False) as h:
        container_id = await _crashed_spawn(h, "a1")
        h.sync()
        record = h.runtime.registry.get("a1")
        assert record.in_operation and not record.settled.is_set()
        await h.runtime.recovery.wait()
        assert record.status == AgentStatus.READY and record.settled.is_set()
        assert container_id is not None and h.fake.containers[container_id].running
        ready = [e for e in h.drain() if e.event == "agent_ready"]
        assert ready and ready[-1].data["recovered"] is True
        assert h.runtime.journal.orphans() == []


async def test_a_spawn_that_cannot_be_finished_is_removed_with_a_reason(tmp_path: Path) -> None:
    async with harness(tmp_path, ready=False) as h:
        await _crashed_spawn(h, "a1")
        h.fake.fail["start"] = EngineError("mount source gone")
        h.sync()
        await h.runtime.recovery.wait()
        assert h.runtime.registry.find("a1") is None and h.fake.containers == {}
        stopped = [e for e in h.drain() if e.event == "agent_stopped"]
        assert stopped[-1].data["reason"] == "spawn_interrupted"
        assert "a1" in h.deployment.fake_secrets.removed


async def test_a_spawn_cut_short_before_any_container_is_reported_gone(tmp_path: Path) -> None:
    async with harness(tmp_path, ready=False) as h:
        await _crashed_spawn(h, "a1", created=False)
        h.sync()
        await h.runtime.recovery.wait()
        (event,) = [e for e in h.drain() if e.event == "agent_stopped"]
        assert event.agent_id == "a1" and event.data["reason"] == "spawn_interrupted"
        assert h.runtime.journal.orphans() == []


async def test_recovery_waits_for_the_engine_and_tries_again(tmp_path: Path) -> None:
    async with harness(tmp_path, ready=False) as h:
        await _crashed_spawn(h, "a1")
        h.fake.fail["get_image"] = SocketError("engine gone")
        h.sync()
        await h.runtime.recovery.wait()
        assert len(h.runtime.journal.orphans()) == 1
        del h.fake.fail["get_image"]
        h.sync()
        await h.runtime.recovery.wait()
        assert h.runtime.registry.get("a1").status == AgentStatus.READY


async def test_a_stop_cut_short_is_finished_and_a_retry_succeeds(tmp_path: Path) -> None:
    async with harness(tmp_path, ready=False) as h:
        plan = plan_agent(request(id="a1"), h.runtime.settings, host_memory=1 << 40, host_cpus=64)
        container_id = await h.fake.create(container_spec(plan, image(), h.runtime.settings))
        await h.fake.start(container_id)
        Journal(h.runtime.journal.folder).begin(
            "stop", "a1", container_id=container_id, reason="idle", labels=plan.labels.encode()
        )
        h.sync()
        await h.runtime.recovery.wait()
        assert h.fake.containers == {} and h.runtime.registry.find("a1") is None
        stopped = [e for e in h.drain() if e.event == "agent_stopped"]
        assert [e.data["reason"] for e in stopped] == ["idle"]
        await h.runtime.operations.stop("a1")


async def test_a_restart_cut_short_is_finished(tmp_path: Path) -> None:
    async with harness(tmp_path, ready=False) as h:
        plan = plan_agent(request(id="a1"), h.runtime.settings, host_memory=1 << 40, host_cpus=64)
        container_id = await h.fake.create(container_spec(plan, image(), h.runtime.settings))
        Journal(h.runtime.journal.folder).begin("restart", "a1", container_id=container_id)
        h.sync()
        await h.runtime.recovery.wait()
        assert h.runtime.registry.get("a1").status == AgentStatus.READY
        assert h.fake.containers[container_id].running


async def test_a_turn_cut_short_is_answered_as_interrupted_with_what_was_said(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, ready=False) as h:
        plan = plan_agent(
            request(id="a1", type="custom", image="parallax/agent-claude:latest"),
            h.runtime.settings,
            host_memory=1 << 40,
            host_cpus=64,
        )
        state = running_state("c" * 64, plan.labels.encode())
        h.fake.containers[state.id] = state
        earlier = Journal(h.runtime.journal.folder)
        intent = earlier.begin("turn", "a1", container_id=state.id, turnId="turn-1")
        earlier.append_output(intent, b"half an answer")
        h.fake.exec_results = {"/bin/sh -c": ExecResult(0, b"")}
        h.sync()
        await h.runtime.recovery.wait()
        (answer,) = await h.runtime.messaging.messages("a1", 10)
        assert answer.type == "error" and answer.metadata.get("code") == "TURN_INTERRUPTED"
        assert "half an answer" in answer.content
        kills = [argv for _, argv in h.fake.called("exec") if "turn-1" in argv]
        assert kills, "the CLI left in the container is ended"
        assert h.runtime.registry.get("a1").status == AgentStatus.READY
        assert h.runtime.journal.orphans() == []


async def test_an_execution_clean_up_cut_short_is_finished(tmp_path: Path) -> None:
    async with harness(tmp_path, ready=False) as h:
        h.fake.volumes["parallax-exec-e1"] = VolumeInfo("parallax-exec-e1", {}, None)
        Journal(h.runtime.journal.folder).begin("execution", "e1", volumes=["parallax-exec-e1"])
        h.sync()
        await h.runtime.recovery.wait()
        assert h.fake.volumes == {} and h.runtime.journal.orphans() == []
