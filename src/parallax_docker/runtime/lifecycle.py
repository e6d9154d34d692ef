"""An agent's state machine: its record and every named transition of it.

This module is the only writer of an ``AgentRecord``. Each transition sets the record's status
and flags together and returns the events that the change means (``AgentEvent``), which the
caller hands to the one ``Publisher``. Nothing here does I/O.

The flags say who is moving the agent right now, so that the engine's reports of what that
move causes are not taken for news:
- ``transitioning``: a spawn or a restart (or their recovery) is under way; engine events update
  the observed state only, the operation settles the status.
- ``stopping``: the runtime itself stops or removes the container; the exit is a stop.
- ``busy`` / ``login_required``: a turn runs / the CLI asked for a login (running agents read as
  busy / authenticating instead of ready).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from parallax_docker.backends.base import ContainerState
from parallax_docker.models import AgentHandle, AgentStatus
from parallax_docker.runtime.events import AgentEvent
from parallax_docker.runtime.labels import AgentLabels

OOM_MESSAGE = "the agent ran out of memory and was killed"
NODE_LOST_MESSAGE = "the machine the agent ran on was lost (down or drained)"
NODE_LOST = "NODE_LOST"
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
        handle.restart_count = self.restart_count
        if self.probed_ready and self.state is not None and self.state.health == "starting":
            # Docker's first scheduled check has not run yet; the runtime's probe has passed.
            handle.health = "healthy"
        if stale:
            handle.stale = True
        return handle

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
            stale,
        )
        cached = self._json
        if cached is not None and cached[0] is self.state and cached[1] == key:
            return cached[2]
        data = self.handle(stale).model_dump_json(by_alias=True).encode()
        self._json = (self.state, key, data)
        return data


def derive_status(
    state: ContainerState, stopping: bool = False, probed_ready: bool = False
) -> tuple[AgentStatus, str | None, str | None]:
    """(status, error, error code) of an agent whose container is in ``state``."""
    if state.status == "created":
        return AgentStatus.PENDING, None, None
    if state.status == "removing":
        return AgentStatus.STOPPING, None, None
    if state.running or state.status in ("running", "restarting", "paused"):
        if stopping:
            return AgentStatus.STOPPING, None, None
        if state.health == "unhealthy":
            return AgentStatus.ERROR, "the agent's health check is failing", "HEALTH_CHECK_FAILED"
        if state.health == "starting" and not probed_ready:
            return AgentStatus.STARTING, None, None
        return AgentStatus.READY, None, None
    # exited or dead
    if state.lost and not stopping:
        # An error, not a stop: the agent did not end, and autoRestart brings it back.
        return AgentStatus.ERROR, NODE_LOST_MESSAGE, NODE_LOST
    if state.oom_killed:
        return AgentStatus.ERROR, OOM_MESSAGE, "RESOURCE_LIMIT"
    if stopping or state.exit_code in (0, None):
        return AgentStatus.STOPPED, None, None
    return (AgentStatus.ERROR, f"the agent exited with code {state.exit_code}", "AGENT_EXITED")


# -- events -------------------------------------------------------------------------------------


def event(name: str, record: AgentRecord, **extra: Any) -> AgentEvent:
    data: dict[str, Any] = {"agent": record.handle().model_dump(mode="json", by_alias=True)}
    data.update(extra)
    return AgentEvent(name, data, record.id)


Events = list[AgentEvent]


def _ready_status(record: AgentRecord) -> AgentStatus:
    """What a running, healthy agent reads as: busy in a turn, waiting for a login, ready."""
    if record.busy:
        return AgentStatus.BUSY
    if record.login_required:
        return AgentStatus.AUTHENTICATING
    return AgentStatus.READY


def _observe(record: AgentRecord, state: ContainerState) -> None:
    record.state = state
    if not state.running:
        record.probed_ready = False
    if record.transitioning:
        return
    record.status, record.error, record.error_code = derive_status(
        state, record.stopping, record.probed_ready
    )
    if record.status == AgentStatus.READY:
        record.status = _ready_status(record)


def _report(record: AgentRecord, before: AgentStatus, lost_before: bool = False) -> Events:
    """The event a status change seen on the engine means (none for the runtime's own moves).

    Losing the node is news even when the agent had already exited with an error there (a
    node shutting down stops its containers before the cluster marks it down).
    """
    newly_lost = record.error_code == NODE_LOST and not lost_before
    if (record.status == before and not newly_lost) or record.stopping or record.transitioning:
        return []
    if record.status == AgentStatus.ERROR and record.error_code == NODE_LOST:
        return [event("agent_stopped", record, reason="node_lost", error=record.error)]
    if record.status == AgentStatus.ERROR:
        return [event("agent_error", record, error=record.error)]
    if record.status == AgentStatus.STOPPED:
        exit_code = record.state.exit_code if record.state else None
        return [event("agent_stopped", record, reason="exited", exitCode=exit_code)]
    if record.status == AgentStatus.READY:
        return [event("agent_ready", record)]
    return []


# -- spawn and restart ---------------------------------------------------------------------------


def spawn_begun(labels: AgentLabels) -> AgentRecord:
    """A new agent whose spawn starts now (reserve it in the registry)."""
    return AgentRecord(labels=labels, status=AgentStatus.PENDING, transitioning=True)


def container_started(record: AgentRecord, **extra: Any) -> Events:
    record.status = AgentStatus.STARTING
    return [event("agent_started", record, **extra)]


def became_ready(record: AgentRecord, state: ContainerState, **extra: Any) -> Events:
    """The spawn, restart or recovery saw the agent ready: it ends here."""
    record.transitioning = False
    record.probed_ready = True
    record.last_activity = time.time()
    _observe(record, state)
    record.settled.set()
    return [event("agent_ready", record, **extra)]


def restart_begun(record: AgentRecord, *, automatic: bool) -> None:
    record.settled.clear()
    record.transitioning = True
    record.status = AgentStatus.STARTING
    if automatic:
        record.restart_count += 1
        record.restart_times.append(time.time())


def bring_back_failed(record: AgentRecord, state: ContainerState | None) -> Events:
    """A restart (or the recovery of a spawn) ended without a ready agent."""
    record.transitioning = False
    record.settled.set()
    if state is None:
        return []
    before = AgentStatus.STARTING
    _observe(record, state)
    return _report(record, before)


def spawn_abandoned(record: AgentRecord) -> None:
    """A spawn failed and nothing of it is left (drop the record from the registry)."""
    record.transitioning = False
    record.settled.set()


def recovery_begun(record: AgentRecord) -> None:
    """An adopted agent whose spawn or restart a crash cut short: recovery settles it."""
    record.settled.clear()
    record.transitioning = True
    if record.status not in (AgentStatus.PENDING, AgentStatus.STOPPING):
        record.status = AgentStatus.STARTING


def recovered_away(record: AgentRecord, reason: str, error: str) -> Events:
    """Recovery could not finish the agent's spawn and removed what was left of it."""
    record.transitioning = False
    record.stopping = False
    record.status = AgentStatus.STOPPED
    record.settled.set()
    return [event("agent_stopped", record, reason=reason, error=error, exitCode=None)]


# -- stop and removal ---------------------------------------------------------------------------


def stop_begun(record: AgentRecord) -> None:
    record.stopping = True
    record.status = AgentStatus.STOPPING


def removal_begun(record: AgentRecord) -> None:
    """The runtime removes a container nobody needs (the status stays until it is gone)."""
    record.stopping = True


def stop_failed(record: AgentRecord, state: ContainerState | None) -> None:
    """The stop did not happen; the record takes whatever state the container is in."""
    record.stopping = False
    current = state or record.state
    if current is not None:
        _observe(record, current)


def stopped(record: AgentRecord, final: ContainerState | None, reason: str, **extra: Any) -> Events:
    """The runtime stopped and removed the agent (drop it from the registry)."""
    if final is not None:
        record.state = final
    record.status = AgentStatus.STOPPED
    exit_code = record.state.exit_code if record.state else None
    return [event("agent_stopped", record, reason=reason, exitCode=exit_code, **extra)]


def container_removed(record: AgentRecord, reason: str) -> Events:
    """The runtime removed a container nobody needs any more (janitor, gc)."""
    record.stopping = False
    if record.status in RELEASED:
        return []
    record.status = AgentStatus.ERROR
    return [event("agent_error", record, error=reason)]


def vanished(record: AgentRecord) -> Events:
    """The container is gone behind the runtime's back (drop the record)."""
    # An agent that already exited was reported then; only a live one is news.
    if record.status in RELEASED:
        return []
    exit_code = record.state.exit_code if record.state else None
    return [event("agent_stopped", record, reason="removed", exitCode=exit_code)]


# -- what the engine reports --------------------------------------------------------------------


def adopted(labels: AgentLabels) -> AgentRecord:
    """An agent found on the engine (start-up, resync) that the registry did not know."""
    return AgentRecord(labels=labels, status=AgentStatus.PENDING)


def observed(record: AgentRecord, state: ContainerState) -> Events:
    """A fresh engine state of the agent's container; the events its changes mean."""
    before = record.status
    lost_before = record.state is not None and record.state.lost
    _observe(record, state)
    return _report(record, before, lost_before)


def probe_passed(record: AgentRecord) -> Events:
    """The runtime's readiness probe passed for an agent Docker still calls starting."""
    if record.status != AgentStatus.STARTING or record.transitioning:
        return []
    record.probed_ready = True
    record.status = _ready_status(record)
    return [event("agent_ready", record)]


# -- turns and activity -------------------------------------------------------------------------


def touched(record: AgentRecord, now: float | None = None) -> None:
    """Activity on the agent: it resets the idle timer."""
    record.last_activity = time.time() if now is None else now


def turn_started(record: AgentRecord, now: float | None = None) -> Events:
    record.busy = True
    if record.status in (AgentStatus.READY, AgentStatus.AUTHENTICATING):
        record.status = AgentStatus.BUSY
    touched(record, now)
    return [event("agent_busy", record)]


def turn_ended(
    record: AgentRecord,
    *,
    ok: bool | None,
    login_required: bool = False,
    login_url: str | None = None,
    now: float | None = None,
) -> Events:
    """A turn ended: ``ok`` None when it was cut short (no answer to judge the login by)."""
    record.busy = False
    touched(record, now)
    if login_required:
        record.login_required = True
    elif ok:
        record.login_required = False
    if record.status in (AgentStatus.BUSY, AgentStatus.READY, AgentStatus.AUTHENTICATING):
        record.status = _ready_status(record)
    if login_required:
        return [event("login_required", record, loginUrl=login_url)]
    if record.status == AgentStatus.READY:
        return [event("agent_ready", record)]
    return []


# -- auto-restart bookkeeping -------------------------------------------------------------------


def forget_restarts_before(record: AgentRecord, cutoff: float) -> None:
    record.restart_times[:] = [t for t in record.restart_times if t >= cutoff]
