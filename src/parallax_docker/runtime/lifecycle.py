"""An agent's state machine: every named transition of its record.

This module is the only writer of an ``AgentRecord`` (runtime/agent_record.py, where its flags
are described). Each transition sets the record's status and flags together and returns the
events that the change means (``AgentEvent``), which the caller hands to the one ``Publisher``.
Nothing here does I/O.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from parallax_docker.backends.base import ContainerState
from parallax_docker.models import AgentStatus
from parallax_docker.runtime.agent_record import (
    ENGINE_STOPPED,
    ENGINE_STOPPED_MESSAGE,
    NODE_LOST,
    NODE_LOST_MESSAGE,
    OOM_MESSAGE,
    RELEASED,
    AgentRecord,
)
from parallax_docker.runtime.events import AgentEvent
from parallax_docker.runtime.labels import AgentLabels


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
        record.heartbeat = record.heartbeat_error = None
    else:
        record.engine_stopped = False
    if record.transitioning:
        return
    # The heartbeat, when it is watched, stands for Docker's health (which such agents lack).
    seen = state if record.heartbeat is None else replace(state, health=record.heartbeat)
    record.status, record.error, record.error_code = derive_status(
        seen, record.stopping, record.probed_ready
    )
    if record.status == AgentStatus.READY:
        record.status = _ready_status(record)
    elif record.heartbeat == "unhealthy" and record.heartbeat_error:
        record.error = f"the agent's heartbeat says: {record.heartbeat_error}"
    elif record.engine_stopped and not record.stopping:
        record.status = AgentStatus.STOPPED
        record.error, record.error_code = ENGINE_STOPPED_MESSAGE, ENGINE_STOPPED


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


def became_ready(
    record: AgentRecord, state: ContainerState, *, heartbeat: bool = False, **extra: Any
) -> Events:
    """The spawn, restart or recovery saw the agent ready: it ends here. ``heartbeat``: its
    heartbeat said so (and tells its health from now on)."""
    record.transitioning = False
    record.probed_ready = True
    record.heartbeat = "healthy" if heartbeat else None
    record.heartbeat_error = None
    record.last_activity = time.time()
    _observe(record, state)
    record.settled.set()
    return [event("agent_ready", record, **extra)]


def restart_begun(record: AgentRecord, *, automatic: bool) -> None:
    record.settled.clear()
    record.transitioning = True
    record.status = AgentStatus.STARTING
    # Whatever listened died with the old run of the container.
    record.ports = ()
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


def heartbeat_read(record: AgentRecord, healthy: bool, why: str | None = None) -> Events:
    """What the agent's heartbeat says now (runtime/heartbeat.py); events when that changes."""
    health = "healthy" if healthy else "unhealthy"
    why = None if healthy else why
    if record.state is None or (record.heartbeat, record.heartbeat_error) == (health, why):
        return []
    before = record.status
    record.heartbeat, record.heartbeat_error = health, why
    _observe(record, record.state)
    if record.status == before == AgentStatus.ERROR and why is not None:
        # Still failing, for another reason: news too.
        return [event("agent_error", record, error=record.error)]
    return _report(record, before)


def engine_went_down(record: AgentRecord) -> Events:
    """The engine stopped the agent's container while it went down (runtime/outages.py)."""
    if record.engine_stopped or record.state is None or record.state.running:
        return []
    record.engine_stopped = True
    _observe(record, record.state)
    exit_code = record.state.exit_code
    return [event("agent_stopped", record, reason="engine-stopped", exitCode=exit_code)]


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


# -- previews -----------------------------------------------------------------------------------


def port_opened(record: AgentRecord, port: int) -> Events:
    """The service reached ``port`` of the agent for a preview; it shows in the handle."""
    if port in record.ports:
        return []
    record.ports = tuple(sorted((*record.ports, port)))
    return []


# -- auto-restart bookkeeping -------------------------------------------------------------------


def forget_restarts_before(record: AgentRecord, cutoff: float) -> None:
    record.restart_times[:] = [t for t in record.restart_times if t >= cutoff]
