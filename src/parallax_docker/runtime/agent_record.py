"""What the runtime knows of one agent (``AgentRecord``) and the handle made from it.

Read a record anywhere; only runtime/lifecycle.py changes one (a unit test holds it to that).
The flags say who is moving the agent right now, so that the engine's reports of what that
move causes are not taken for news:
- ``transitioning``: a spawn or a restart (or their recovery) is under way; engine events update
  the observed state only, the operation settles the status.
- ``stopping``: the runtime itself stops or removes the container; the exit is a stop.
- ``busy`` / ``login_required``: a turn runs / the CLI asked for a login (running agents read as
  busy / authenticating instead of ready).

``heartbeat`` is the agent's health when its heartbeat, not Docker's check, tells it
(runtime/heartbeat.py); ``engine_stopped`` marks a container the engine stopped while it went
down (runtime/outages.py), which ``autoRestart`` brings back like a crash.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from parallax_docker.backends.base import ContainerState
from parallax_docker.models import AgentHandle, AgentStatus
from parallax_docker.runtime.labels import AgentLabels

OOM_MESSAGE = "the agent ran out of memory and was killed"
ENGINE_STOPPED = "ENGINE_STOPPED"
ENGINE_STOPPED_MESSAGE = "the Docker engine stopped the agent while it went down"
NODE_LOST = "NODE_LOST"
NODE_LOST_MESSAGE = "the machine the agent ran on was lost (down or drained)"
# An agent whose container has exited holds no memory or CPU.
RELEASED = frozenset({AgentStatus.STOPPED, AgentStatus.ERROR})
LIVE = frozenset(
    {
        AgentStatus.PENDING,
        AgentStatus.STARTING,
        AgentStatus.AUTHENTICATING,
        AgentStatus.READY,
        AgentStatus.BUSY,
    }
)


@dataclass
class AgentRecord:
    """What the runtime knows of one agent. Read it anywhere; change it only here."""

    labels: AgentLabels
    status: AgentStatus
    state: ContainerState | None = None
    error: str | None = None
    error_code: str | None = None
    stopping: bool = False
    transitioning: bool = False
    # The runtime's own readiness probe passed for the current run of the container (Docker's
    # health stays "starting" until its first scheduled check, which may be much later).
    probed_ready: bool = False
    # Set when a spawn (or its recovery) has ended one way or the other; a retried spawn with
    # the same id and body waits on it.
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    # Wall-clock time of the last activity (spawn, a turn, typing); drives idleTimeout.
    last_activity: float = field(default_factory=time.time)
    restart_count: int = 0
    # Times of recent auto-restarts, for the cap and the back-off.
    restart_times: list[float] = field(default_factory=list)
    busy: bool = False
    login_required: bool = False
    # Ports the service reached as previews of the agent's apps (shown in the handle).
    ports: tuple[int, ...] = ()
    # "healthy" / "unhealthy" from the agent's heartbeat (None: not watched, or not running);
    # with what its last report or silence said when unhealthy.
    heartbeat: str | None = None
    heartbeat_error: str | None = None
    # The engine stopped the container while it went down (not the agent, not the runtime).
    engine_stopped: bool = False
    # The handle as JSON with what it was made from (see handle_json).
    _json: tuple[ContainerState | None, tuple[object, ...], bytes] | None = field(
        default=None, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not self.transitioning:
            self.settled.set()

    @property
    def id(self) -> str:
        return self.labels.id

    @property
    def container_id(self) -> str | None:
        return self.state.id if self.state else None

    @property
    def in_operation(self) -> bool:
        """A spawn, restart or stop of the runtime's own is under way."""
        return self.transitioning or self.stopping

    def handle(self, stale: bool = False) -> AgentHandle:
        handle = self.labels.handle(self.status, self.state, self.error, self.error_code)
        shown: dict[str, object] = {"restart_count": self.restart_count, "ports": list(self.ports)}
        if self.probed_ready and self.state is not None and self.state.health == "starting":
            # Docker's first scheduled check has not run yet; the runtime's probe has passed.
            shown["health"] = "healthy"
        if self.heartbeat is not None:
            shown["health"] = self.heartbeat
        if stale:
            shown["stale"] = True
        return handle.model_copy(update=shown)

    def handle_json(self, stale: bool = False) -> bytes:
        """``handle()`` as JSON, built again only when something it shows has changed.

        The handle is made from the (fixed) labels and exactly the fields in the key; states
        are immutable and replaced on every change, so identity tells a new one.
        """
        key = (
            self.status,
            self.error,
            self.error_code,
            self.restart_count,
            self.probed_ready,
            self.ports,
            self.heartbeat,
            stale,
        )
        cached = self._json
        if cached is not None and cached[0] is self.state and cached[1] == key:
            return cached[2]
        data = self.handle(stale).model_dump_json(by_alias=True).encode()
        self._json = (self.state, key, data)
        return data
