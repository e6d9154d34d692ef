"""Per-agent resource metrics from cheap one-shot samples.

The engine's own stats call waits a second to take two samples. Here each call takes one
sample (the backend reads the agent's cgroup counters when it can, else asks the engine for a
one-shot sample) and compares it with the previous one kept per agent; the first call for an
agent takes two samples a short moment apart.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from parallax_docker.backends.base import Backend, StatsSample
from parallax_docker.models import MetricsResponse, NetworkUsage
from parallax_docker.resources import NANO
from parallax_docker.runtime.agent_record import AgentRecord
from parallax_docker.runtime.clock import parse_engine_time

_FIRST_GAP_S = 0.05
# An older previous sample still gives a rate, but over a long, stale window.
_MAX_SAMPLE_AGE_S = 30.0


@dataclass(frozen=True)
class _Kept:
    sample: StatsSample
    at: float


class MetricsSampler:
    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._last: dict[str, _Kept] = {}

    def forget(self, agent_id: str) -> None:
        self._last.pop(agent_id, None)

    async def sample(self, record: AgentRecord, *, host_cpus: int) -> MetricsResponse:
        state = record.state
        if state is None:
            raise ValueError("an agent without a container has no metrics")
        now_sample = await self._backend.usage(state)
        now = time.monotonic()
        previous = self._last.get(record.id)
        if previous is None or now - previous.at > _MAX_SAMPLE_AGE_S:
            previous = _Kept(now_sample, now)
            await asyncio.sleep(_FIRST_GAP_S)
            now_sample = await self._backend.usage(state)
            now = time.monotonic()
        self._last[record.id] = _Kept(now_sample, now)
        return _metrics(record, previous, _Kept(now_sample, now), host_cpus)


def _metrics(record: AgentRecord, before: _Kept, after: _Kept, host_cpus: int) -> MetricsResponse:
    wall_ns = max(1.0, (after.at - before.at) * NANO)
    used_ns = max(0, after.sample.cpu_total_ns - before.sample.cpu_total_ns)
    cores_used = used_ns / wall_ns
    limit_cores = (
        record.labels.nano_cpus / NANO if record.labels.nano_cpus else float(host_cpus or 1)
    )
    memory_limit = record.labels.memory_bytes or after.sample.memory_limit
    started = record.state.started_at if record.state else None
    return MetricsResponse(
        agent_id=record.id,
        cpu=round(100.0 * cores_used / limit_cores, 2),
        cpu_host_percent=round(100.0 * cores_used / max(1, host_cpus), 2),
        cpu_limit=limit_cores,
        memory=after.sample.memory_usage,
        memory_limit=memory_limit,
        memory_percent=round(100.0 * after.sample.memory_usage / memory_limit, 2)
        if memory_limit
        else 0.0,
        pids=after.sample.pids,
        network=NetworkUsage(rx_bytes=after.sample.rx_bytes, tx_bytes=after.sample.tx_bytes),
        uptime=_uptime(started, record.labels.created_at),
        timestamp=datetime.now(UTC).isoformat(timespec="milliseconds"),
    )


def _uptime(started_at: str | None, created_at: str) -> float:
    started = parse_engine_time(started_at)
    if started is None:
        return 0.0
    # A claimed pooled container started before the agent was created (docs/pool.md).
    started = max(started, parse_engine_time(created_at) or 0.0)
    return round(max(0.0, time.time() - started), 3)
