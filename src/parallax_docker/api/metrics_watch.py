"""Metrics over the event WebSocket: a client names the agents it shows, and is sent their
metrics every few seconds in one ``agent_metrics`` frame, with no request per agent.

The client's control frame, on ``/ws`` or ``/ws/events``::

    {"type": "watch_metrics", "agentIds": ["agent-1", "agent-2"], "everyS": 5}

A new one replaces the last; an empty list stops the rounds. The first round of a new watch is
sent at once, or a second after the last round if that was sooner (a client changing its
watch many times a second gets one round a second). An agent that cannot be sampled (gone, not
running, the engine away) is left out of the round, not reported as an error: the agent's own
events say what became of it. A bad control frame is answered with an error frame
(``{"type": "error", "code": ...}``) and the connection stays open. The cost is what the
client shows: a page sends the agents on screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from parallax_docker.errors import ParallaxError, ValidationError
from parallax_docker.models import MetricsResponse
from parallax_docker.runtime.events import RuntimeEvent
from parallax_docker.runtime.runtime import Runtime

WATCH_TYPE = "watch_metrics"
METRICS_EVENT = "agent_metrics"
MAX_WATCHED = 500
MIN_EVERY_S, MAX_EVERY_S, DEFAULT_EVERY_S = 1, 60, 5
# Samples taken at once in a round: each may be an engine call (a one-shot `docker stats`).
_AT_ONCE = 4
# However often a client changes its watch, its rounds start at most this often.
_MIN_GAP_S = 1.0
_MAX_ID_LENGTH = 128

Sample = Callable[[str], Awaitable[MetricsResponse]]


@dataclass(frozen=True)
class WatchRequest:
    agent_ids: tuple[str, ...] = ()
    every_s: int = DEFAULT_EVERY_S


async def read_metrics(runtime: Runtime, agent_id: str) -> MetricsResponse:
    """One agent's metrics, with its model usage when the gateway meters it."""
    metrics = await runtime.queries.metrics(agent_id)
    if runtime.gateway is not None:
        metrics.model_usage = runtime.gateway.usage(agent_id)
    return metrics


def parse_control(text: str) -> WatchRequest:
    """The watch a client's text frame asks for; ValidationError when it is not one."""
    try:
        data: Any = json.loads(text)
    except ValueError:
        raise ValidationError("a control frame must be a JSON object") from None
    if not isinstance(data, dict) or data.get("type") != WATCH_TYPE:
        raise ValidationError(
            f'unknown control frame: the one this socket takes is {{"type": "{WATCH_TYPE}"}}'
        )
    ids = data.get("agentIds", [])
    if not isinstance(ids, list) or not all(
        isinstance(i, str) and 0 < len(i) <= _MAX_ID_LENGTH for i in ids
    ):
        raise ValidationError("agentIds must be a list of agent ids")
    if len(ids) > MAX_WATCHED:
        raise ValidationError(f"at most {MAX_WATCHED} agents can be watched at once")
    every = data.get("everyS", DEFAULT_EVERY_S)
    if isinstance(every, bool) or not isinstance(every, int):
        raise ValidationError("everyS must be a whole number of seconds")
    if not MIN_EVERY_S <= every <= MAX_EVERY_S:
        raise ValidationError(f"everyS must be between {MIN_EVERY_S} and {MAX_EVERY_S}")
    return WatchRequest(tuple(dict.fromkeys(ids)), every)


class MetricsWatch:
    """One connection's watch: its rounds of samples, until the connection ends."""

    def __init__(self, sample: Sample) -> None:
        self._sample = sample
        self._request = WatchRequest()
        self._changed = asyncio.Event()

    def update(self, request: WatchRequest) -> None:
        self._request = request
        self._changed.set()

    async def rounds(self, send: Callable[[RuntimeEvent], Awaitable[None]]) -> None:
        last_round = -_MIN_GAP_S
        while True:
            request = self._request
            self._changed.clear()
            wait_s: float | None = None
            if request.agent_ids:
                last_round = time.monotonic()
                samples = await self.sample_all(request.agent_ids)
                data = {"agents": [m.model_dump(mode="json", by_alias=True) for m in samples]}
                await send(RuntimeEvent(event=METRICS_EVENT, data=data))
                wait_s = request.every_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait_s)
            await asyncio.sleep(max(0.0, last_round + _MIN_GAP_S - time.monotonic()))

    async def sample_all(self, agent_ids: Sequence[str]) -> list[MetricsResponse]:
        """The metrics of those of ``agent_ids`` that can be sampled, in their order."""
        gate = asyncio.Semaphore(_AT_ONCE)

        async def one(agent_id: str) -> MetricsResponse | None:
            async with gate:
                try:
                    return await self._sample(agent_id)
                except ParallaxError:
                    return None

        found = await asyncio.gather(*(one(i) for i in agent_ids))
        return [m for m in found if m is not None]
