"""The service's in-memory view of its agents, kept in step with the engine by the reconciler.

Reads (list, get) are answered from here without an engine call. Ids and names are reserved
here, before any await, so that two concurrent spawns of one name cannot both pass.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from parallax_docker.backends.base import ContainerState
from parallax_docker.errors import AgentNotFoundError, ConflictError
from parallax_docker.models import AgentHandle, AgentStatus
from parallax_docker.runtime.labels import AgentLabels

OOM_MESSAGE = "the agent ran out of memory and was killed"


@dataclass
class AgentRecord:
    labels: AgentLabels
    status: AgentStatus
    state: ContainerState | None = None
    error: str | None = None
    error_code: str | None = None
    # Set while this service itself stops or removes the container, so that the exit it causes
    # is reported as a stop, not a crash.
    stopping: bool = False
    # Set while a spawn or restart is under way: events then update the state, not the status,
    # which the operation itself settles.
    transitioning: bool = False
    # Set once the runtime's own readiness probe passed for the current run of the container;
    # Docker's health stays "starting" until its first scheduled check, which may be later.
    probed_ready: bool = False
    # Set when a spawn has finished one way or the other; a retried spawn with the same id and
    # body waits on it and answers with the same agent.
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    # Wall-clock time of the last activity (spawn, a turn, a log read); drives idleTimeout.
    last_activity: float = field(default_factory=time.time)
    restart_count: int = 0
    # The handle as JSON with what it was made from (see handle_json).
    _json: tuple[ContainerState | None, tuple[object, ...], bytes] | None = field(
        default=None, repr=False, compare=False
    )
    # Times of recent auto-restarts, for the cap and the back-off.
    restart_times: list[float] = field(default_factory=list)
    # Set while a turn (one message to the agent's CLI) runs: a running agent reads as busy.
    busy: bool = False
    # Set when the agent's CLI said it needs a login or a valid key; cleared by a turn that
    # gets through. A running agent then reads as authenticating.
    login_required: bool = False

    def __post_init__(self) -> None:
        if not self.transitioning:
            self.settled.set()

    @property
    def id(self) -> str:
        return self.labels.id

    @property
    def container_id(self) -> str | None:
        return self.state.id if self.state else None

    def handle(self, stale: bool = False) -> AgentHandle:
        handle = self.labels.handle(self.status, self.state, self.error, self.error_code)
        handle.restart_count = self.restart_count
        if stale:
            handle.stale = True
        return handle

    def handle_json(self, stale: bool = False) -> bytes:
        """``handle()`` as JSON, built again only when something it shows has changed.

        The handle is made from the (fixed) labels and exactly the fields in the key; states
        are immutable and replaced on every change, so identity tells a new one.
        """
        key = (self.status, self.error, self.error_code, self.restart_count, stale)
        cached = self._json
        if cached is not None and cached[0] is self.state and cached[1] == key:
            return cached[2]
        data = self.handle(stale).model_dump_json(by_alias=True).encode()
        self._json = (self.state, key, data)
        return data

    def observe(self, state: ContainerState) -> None:
        """Take a fresh engine state and derive status and error from it."""
        self.state = state
        if not state.running:
            self.probed_ready = False
        if self.transitioning:
            return
        self.status, self.error, self.error_code = derive_status(
            state, self.stopping, self.probed_ready
        )
        if self.status == AgentStatus.READY:
            self.status = self.ready_status()

    def ready_status(self) -> AgentStatus:
        """What a running, healthy agent reads as: busy in a turn, waiting for a login, ready."""
        if self.busy:
            return AgentStatus.BUSY
        if self.login_required:
            return AgentStatus.AUTHENTICATING
        return AgentStatus.READY


def derive_status(
    state: ContainerState, stopping: bool = False, probed_ready: bool = False
) -> tuple[AgentStatus, str | None, str | None]:
    if state.status in ("created",):
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
    if state.oom_killed:
        return AgentStatus.ERROR, OOM_MESSAGE, "RESOURCE_LIMIT"
    if stopping or state.exit_code in (0, None):
        return AgentStatus.STOPPED, None, None
    return (AgentStatus.ERROR, f"the agent exited with code {state.exit_code}", "AGENT_EXITED")


class Registry:
    def __init__(self) -> None:
        self._by_id: dict[str, AgentRecord] = {}

    def __iter__(self) -> Iterator[AgentRecord]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, agent_id: str) -> AgentRecord:
        record = self._by_id.get(agent_id)
        if record is None:
            raise AgentNotFoundError(f"agent {agent_id[:80]!r} does not exist")
        return record

    def find(self, agent_id: str) -> AgentRecord | None:
        return self._by_id.get(agent_id)

    def by_container(self, container_id: str) -> AgentRecord | None:
        for record in self._by_id.values():
            if record.container_id == container_id:
                return record
        return None

    def reserve(self, labels: AgentLabels) -> AgentRecord:
        """Claim the id and name for a spawn; ConflictError if either is taken."""
        if labels.id in self._by_id:
            raise ConflictError(f"an agent with id {labels.id!r} already exists")
        # Ids and names are both network aliases: none may stand for two agents.
        for record in self._by_id.values():
            if labels.name in (record.labels.name, record.id):
                raise ConflictError(
                    f"an agent named {labels.name!r} already exists (id {record.id})"
                )
            if labels.id == record.labels.name:
                raise ConflictError(f"another agent is named {labels.id!r}; choose another id")
        record = AgentRecord(labels=labels, status=AgentStatus.PENDING, transitioning=True)
        self._by_id[labels.id] = record
        return record

    def put(self, record: AgentRecord) -> None:
        self._by_id[record.id] = record

    def drop(self, agent_id: str) -> AgentRecord | None:
        return self._by_id.pop(agent_id, None)

    def active_count(self) -> int:
        live = (
            AgentStatus.PENDING,
            AgentStatus.STARTING,
            AgentStatus.AUTHENTICATING,
            AgentStatus.READY,
            AgentStatus.BUSY,
        )
        return sum(1 for r in self._by_id.values() if r.status in live)
