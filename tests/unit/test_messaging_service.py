"""Messaging on the fake platform: a turn's answer, busy refusals, timeouts, logins, and turns
cut short by a stop of the service."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from parallax_docker.backends.base import ExecExit, ExecOutput
from parallax_docker.errors import AgentBusyError, AgentStateError
from parallax_docker.models import AgentStatus
from parallax_docker.runtime.spec import plan_agent
from tests.unit.harness import Harness, harness, request


async def _agent(h: Harness, agent_id: str = "a1") -> None:
    await h.runtime.spawner.spawn(
        request(id=agent_id, type="custom", image="parallax/agent-claude:latest")
    )
    h.drain()


async def test_a_turn_answers_with_what_the_command_printed(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await _agent(h)
        h.fake.turn_outputs.append(
            [ExecOutput("stdout", b"hello "), ExecOutput("stdout", b"there"), ExecExit(0)]
        )
        sent = await h.runtime.messaging.send("a1", "hi", expect_response=True, timeout_ms=5000)
        assert sent.response is not None and sent.response.content == "hello there"
        assert sent.response.type == "response"
        events = h.names()
        assert events[0] == "agent_busy" and "message" in events and events[-1] == "agent_ready"
        history = await h.runtime.messaging.messages("a1", 10)
        assert [m.type for m in history] == ["task", "response"]
        assert h.runtime.journal.orphans() == [] and not h.runtime.journal.owned("turn", "a1")


async def test_a_second_message_while_the_first_runs_is_refused(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await _agent(h)
        h.fake.hang_turns = True
        await h.runtime.messaging.send("a1", "one", expect_response=False, timeout_ms=60_000)
        assert h.runtime.registry.get("a1").status == AgentStatus.BUSY
        with pytest.raises(AgentBusyError):
            await h.runtime.messaging.send("a1", "two", expect_response=False, timeout_ms=None)


async def test_an_agent_not_yet_ready_takes_no_message(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await _agent(h)
        plan = plan_agent(request(id="a2"), h.runtime.settings, host_memory=1 << 40, host_cpus=8)
        h.runtime.registry.reserve(plan.labels)  # a spawn under way: not ready yet
        with pytest.raises(AgentStateError):
            await h.runtime.messaging.send("a2", "hi", expect_response=False, timeout_ms=None)


async def test_a_turn_past_its_timeout_is_interrupted_and_answered(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await _agent(h)
        h.fake.hang_turns = True
        sent = await h.runtime.messaging.send("a1", "slow", expect_response=True, timeout_ms=50)
        assert sent.response is not None and sent.response.metadata.get("code") == "TURN_TIMEOUT"
        turn_id = sent.response.metadata.get("turnId")
        assert any(turn_id in argv for _, argv in h.fake.called("exec"))
        assert h.runtime.registry.get("a1").status == AgentStatus.READY


async def test_a_login_prompt_makes_the_agent_authenticating(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await _agent(h)
        h.fake.turn_outputs.append(
            [ExecOutput("stderr", b"parallax: login required: no key\n"), ExecExit(77)]
        )
        sent = await h.runtime.messaging.send("a1", "hi", expect_response=True, timeout_ms=5000)
        assert sent.response is not None and sent.response.metadata.get("code") == "LOGIN_REQUIRED"
        assert h.runtime.registry.get("a1").status == AgentStatus.AUTHENTICATING
        assert "login_required" in h.names()


async def test_a_turn_the_service_stop_cuts_short_is_answered_interrupted(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await _agent(h)
        h.fake.hang_turns = True
        h.fake.turn_outputs.append([ExecOutput("stdout", b"working on it")])
        await h.runtime.messaging.send("a1", "long", expect_response=False, timeout_ms=60_000)
        async with asyncio.timeout(5):
            while not list(h.runtime.journal.folder.glob("turn.a1.out")):
                await asyncio.sleep(0.01)
        await h.runtime.messaging.close()
        history = await h.runtime.messaging.messages("a1", 10)
        assert history[-1].metadata.get("code") == "TURN_INTERRUPTED"
        assert "working on it" in history[-1].content
        assert h.runtime.registry.get("a1").status == AgentStatus.READY
        assert list(h.runtime.journal.folder.glob("turn.*")) == []
