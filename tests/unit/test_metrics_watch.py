"""The metrics watch of one WebSocket (api/metrics_watch.py): its control frame, and its rounds
with a sampler that answers at once (the real engine's: tests/integration/test_metrics_stream.py).
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from parallax_docker.api.metrics_watch import (
    MAX_WATCHED,
    MetricsWatch,
    WatchRequest,
    parse_control,
)
from parallax_docker.errors import AgentNotFoundError, ValidationError
from parallax_docker.models import MetricsResponse, NetworkUsage
from parallax_docker.runtime.events import RuntimeEvent


def _control(**fields: object) -> str:
    return json.dumps({"type": "watch_metrics", **fields})


def test_a_control_frame_names_agents_once_each_and_an_interval() -> None:
    request = parse_control(_control(agentIds=["a", "b", "a"], everyS=2))
    assert request == WatchRequest(("a", "b"), 2)
    assert parse_control(_control()) == WatchRequest((), 5)


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "{",
        json.dumps({"type": "other"}),
        _control(agentIds=[1]),
        _control(agentIds=[""]),
        _control(agentIds=["x" * 129]),
        _control(agentIds=[f"a{i}" for i in range(MAX_WATCHED + 1)]),
        _control(everyS=0),
        _control(everyS=61),
        _control(everyS=True),
        _control(everyS="5"),
    ],
)
def test_a_bad_control_frame_is_a_validation_error(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_control(text)


def _metrics(agent_id: str) -> MetricsResponse:
    return MetricsResponse(
        agent_id=agent_id,
        cpu=1.0,
        cpu_host_percent=0.5,
        cpu_limit=1.0,
        memory=10,
        memory_limit=100,
        memory_percent=10.0,
        pids=1,
        network=NetworkUsage(rx_bytes=0, tx_bytes=0),
        uptime=1.0,
        timestamp="2026-11-29T00:00:00+00:00",
    )


async def test_rounds_follow_the_last_watch_and_leave_out_what_cannot_be_sampled() -> None:
    sampled: list[str] = []

    async def sample(agent_id: str) -> MetricsResponse:
        sampled.append(agent_id)
        if agent_id == "gone":
            raise AgentNotFoundError("no such agent")
        return _metrics(agent_id)

    sent: asyncio.Queue[RuntimeEvent] = asyncio.Queue()
    watch = MetricsWatch(sample)
    rounds = asyncio.create_task(watch.rounds(sent.put))
    try:
        await asyncio.sleep(0.05)
        assert sent.empty() and sampled == []  # nothing watched, nothing sampled
        watch.update(WatchRequest(("a", "gone"), 60))
        first = await asyncio.wait_for(sent.get(), 2)
        assert first.event == "agent_metrics"
        assert [m["agentId"] for m in first.data["agents"]] == ["a"]
        # A new watch is sampled at once, whatever the interval of the last.
        watch.update(WatchRequest(("b",), 60))
        second = await asyncio.wait_for(sent.get(), 2)
        assert [m["agentId"] for m in second.data["agents"]] == ["b"]
        watch.update(WatchRequest((), 60))
        await asyncio.sleep(0.05)
        assert sent.empty()
    finally:
        rounds.cancel()
        await asyncio.gather(rounds, return_exceptions=True)


async def test_a_watch_changed_many_times_a_second_gets_one_round_a_second() -> None:
    async def sample(agent_id: str) -> MetricsResponse:
        return _metrics(agent_id)

    sent: asyncio.Queue[tuple[float, RuntimeEvent]] = asyncio.Queue()

    async def send(event: RuntimeEvent) -> None:
        await sent.put((time.monotonic(), event))

    watch = MetricsWatch(sample)
    rounds = asyncio.create_task(watch.rounds(send))
    try:
        watch.update(WatchRequest(("a",), 60))
        first_at, _ = await asyncio.wait_for(sent.get(), 2)
        for name in ("b", "c", "d"):
            watch.update(WatchRequest((name,), 60))
            await asyncio.sleep(0.01)
        next_at, event = await asyncio.wait_for(sent.get(), 3)
        assert next_at - first_at >= 0.95
        # The last watch wins; those in between were never sampled.
        assert [m["agentId"] for m in event.data["agents"]] == ["d"]
        assert sent.empty()
    finally:
        rounds.cancel()
        await asyncio.gather(rounds, return_exceptions=True)
