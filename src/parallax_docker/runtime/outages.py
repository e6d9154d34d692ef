"""After the engine went away and came back: which agents did the engine itself stop?

Without live-restore, an engine that shuts down stops every container: SIGTERM, then SIGKILL
after the container's stop timeout. An idle agent exits 0 on SIGTERM, which reads like an exit
of its own, and only crashes are restarted, so an ``autoRestart`` agent would stay down after an
engine restart. The reconciler therefore says when it lost the engine (its event stream ended or
broke) and when it is in sync again; then every agent whose container

- stopped between the loss, less the longest a stop by the engine takes (the stop grace, plus a
  margin), and the sync,
- with the exit a stop gives (0, 143 after SIGTERM, 137 after SIGKILL; not out of memory),
- and that the runtime was not stopping itself,

was stopped by the engine: it is reported ``stopped`` with ``ENGINE_STOPPED`` (event
``agent_stopped``, reason ``engine-stopped``), and the janitor starts it again when it asked for
``autoRestart``, as after a crash. An agent that exited by itself in that same window is taken
for one the engine stopped (the engine's events of that time are gone with it). An engine
restart while the service itself is down is not seen: those agents read as exited.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from parallax_docker.runtime import lifecycle
from parallax_docker.runtime.agent_record import AgentRecord
from parallax_docker.runtime.clock import parse_engine_time
from parallax_docker.runtime.events import Publisher
from parallax_docker.runtime.registry import Registry

STOP_EXITS = frozenset({0, 128 + 15, 128 + 9})
# Beyond the stop grace: the engine's own slowness in stopping many containers at once.
_MARGIN_S = 5.0


def stopped_by_engine(
    record: AgentRecord, lost_at: float, synced_at: float, stop_grace_s: float
) -> bool:
    state = record.state
    if state is None or state.running or state.oom_killed or record.stopping:
        return False
    if state.exit_code not in STOP_EXITS:
        return False
    finished = parse_engine_time(state.finished_at)
    earliest = lost_at - stop_grace_s - _MARGIN_S
    return finished is not None and earliest <= finished <= synced_at + _MARGIN_S


class Outages:
    def __init__(
        self,
        *,
        registry: Registry,
        publisher: Publisher,
        stop_grace_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._publisher = publisher
        self._stop_grace_s = stop_grace_s
        self._clock = clock
        self._lost_at: float | None = None

    def lost(self) -> None:
        """The engine went away (the first loss since the last sync counts)."""
        if self._lost_at is None:
            self._lost_at = self._clock()

    def synced(self) -> int:
        """In sync again: mark the agents the engine stopped meanwhile; how many."""
        lost_at, self._lost_at = self._lost_at, None
        if lost_at is None:
            return 0
        synced_at = self._clock()
        marked = 0
        for record in self._registry:
            if stopped_by_engine(record, lost_at, synced_at, self._stop_grace_s):
                self._publisher.publish(lifecycle.engine_went_down(record))
                marked += 1
        return marked
