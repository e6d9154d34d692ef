"""The heartbeat watch: the health of agents whose image beats a heartbeat, read for nothing.

Docker's HEALTHCHECK execs a probe in every agent at the image's interval; with hundreds of idle
agents the engine spends a core on it. An image that beats (``parallax.heartbeat=1``: the
project's images) gets no Docker health check at all. Its entrypoint writes a line into the
channel the platform mounted every ``PARALLAX_HEARTBEAT_INTERVAL_S`` seconds: "ok" while its
processes are alive and not stopped and its CLI can run, else why not. The janitor's pass hands
the registry to ``sweep``, which, once per interval, reads every watched agent's channel (a
stat, and a read when a line arrived) and judges:

- a line that is not "ok": unhealthy at once, with what it said (a stopped process, a CLI that
  cannot run);
- no line for ``STALE_BEATS`` intervals: unhealthy, "no heartbeat in over N s" (the
  entrypoint itself is stuck, or gone);
- "ok" again: healthy again.

Unhealthy reads as Docker's unhealthy did: status ``error``, ``HEALTH_CHECK_FAILED``, restarted
when the agent asked for ``autoRestart``. A dead process is still seen at once, from the
engine's events. A paused container is not judged, nor one in the hands of an operation.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from parallax_docker.backends.capabilities import Heartbeats
from parallax_docker.models import AgentStatus
from parallax_docker.runtime import lifecycle
from parallax_docker.runtime.agent_record import LIVE, AgentRecord
from parallax_docker.runtime.clock import parse_engine_time
from parallax_docker.runtime.events import Publisher
from parallax_docker.runtime.registry import Registry

# Beats that may go missing before an agent is unhealthy: a beat is late only when the agent is
# starved of CPU, and three in a row is no longer late.
STALE_BEATS = 3


class HeartbeatWatch:
    def __init__(
        self,
        *,
        heartbeats: Heartbeats | None,
        registry: Registry,
        publisher: Publisher,
        interval_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._heartbeats = heartbeats
        self._registry = registry
        self._publisher = publisher
        self._interval_s = interval_s
        self._clock = clock
        # Silence counts from when this service started to listen, at the earliest.
        self._since = clock()
        self._last_sweep = 0.0
        # Agents seen paused, and when each was last seen not paused again.
        self._paused: set[str] = set()
        self._resumed: dict[str, float] = {}

    @property
    def stale_after_s(self) -> float:
        return STALE_BEATS * self._interval_s

    def sweep(self, now: float | None = None, *, force: bool = False) -> int:
        """Judge every watched agent, at most once per interval (``force``: now); how many
        channels were read."""
        now = self._clock() if now is None else now
        heartbeats = self._heartbeats
        if heartbeats is None or (not force and now - self._last_sweep < self._interval_s):
            return 0
        self._last_sweep = now
        read = 0
        for record in self._registry:
            if not self._watchable(record, now):
                continue
            beat = heartbeats.read(record.id)
            if beat is None:
                continue  # no channel: an image without a heartbeat, or a platform without
            read += 1
            self._publisher.publish(self._judge(record, beat.at, beat.report, now))
        return read

    def _watchable(self, record: AgentRecord, now: float) -> bool:
        state = record.state
        if record.in_operation or state is None or not state.running:
            self._paused.discard(record.id)
            self._resumed.pop(record.id, None)
            return False
        if state.status == "paused":
            self._paused.add(record.id)
            return False
        if record.id in self._paused:
            # A frozen entrypoint did not beat: count the silence from the thaw.
            self._paused.discard(record.id)
            self._resumed[record.id] = now
        return record.status in LIVE or (
            record.status == AgentStatus.ERROR and record.heartbeat is not None
        )

    def _judge(
        self, record: AgentRecord, at: float, report: str | None, now: float
    ) -> lifecycle.Events:
        if report is not None:
            return lifecycle.heartbeat_read(record, report == "ok", report)
        # The container's start, or the agent's creation (a pooled container started long
        # before it became this agent), whichever is later.
        started = parse_engine_time(record.state.started_at if record.state else None) or 0.0
        born = parse_engine_time(record.labels.created_at) or 0.0
        last = max(at, started, born, self._since, self._resumed.get(record.id, 0.0))
        if now - last > self.stale_after_s:
            # The same words each time: a longer silence is not news.
            why = f"no heartbeat in over {self.stale_after_s:g}s"
            return lifecycle.heartbeat_read(record, False, why)
        return []
