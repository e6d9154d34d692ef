"""Reads: agents from the registry (no engine call), logs and metrics from the platform, health."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Iterable

from parallax_docker.backends.base import Backend, EngineInfo
from parallax_docker.errors import AgentStateError, ParallaxError, ValidationError
from parallax_docker.models import (
    AgentHandle,
    AgentStatus,
    HealthResponse,
    MetricsResponse,
    NodeHealth,
    RuntimeInfo,
)
from parallax_docker.runtime.agent_record import AgentRecord
from parallax_docker.runtime.engine_link import EngineLink
from parallax_docker.runtime.metrics import MetricsSampler
from parallax_docker.runtime.registry import Registry

MAX_LOG_TAIL = 10_000


class Queries:
    def __init__(
        self, *, backend: Backend, registry: Registry, engine: EngineLink, sampler: MetricsSampler
    ) -> None:
        self._backend = backend
        self._registry = registry
        self._engine = engine
        self._sampler = sampler

    # -- agents -----------------------------------------------------------------------------

    def list(
        self, statuses: Iterable[str] = (), types: Iterable[str] = (), roles: Iterable[str] = ()
    ) -> builtins.list[AgentHandle]:
        stale = not self._engine.up
        return [record.handle(stale=stale) for record in self._selected(statuses, types, roles)]

    def list_json(
        self, statuses: Iterable[str] = (), types: Iterable[str] = (), roles: Iterable[str] = ()
    ) -> bytes:
        """``list`` as the JSON body of GET /agents, from each agent's cached handle JSON.

        The route answers with these bytes as they are: building, validating and serialising
        a few hundred handle models per request costs more than the 5 ms a read may take.
        """
        stale = not self._engine.up
        records = self._selected(statuses, types, roles)
        parts = b",".join(record.handle_json(stale) for record in records)
        return b'{"agents":[' + parts + b'],"count":' + str(len(records)).encode() + b"}"

    def _selected(
        self, statuses: Iterable[str], types: Iterable[str], roles: Iterable[str]
    ) -> builtins.list[AgentRecord]:
        wanted_status, wanted_type, wanted_role = set(statuses), set(types), set(roles)
        valid = {s.value for s in AgentStatus}
        if wanted_status - valid:
            raise ValidationError(
                f"unknown status filter {sorted(wanted_status - valid)[0]!r}",
                resolution=f"Use one of: {', '.join(sorted(valid))}.",
            )
        records = [
            record
            for record in self._registry
            if (not wanted_status or record.status.value in wanted_status)
            and (not wanted_type or record.labels.type in wanted_type)
            and (not wanted_role or record.labels.role in wanted_role)
        ]
        records.sort(key=lambda r: (r.labels.created_at or "", r.id))
        return records

    def get(self, agent_id: str) -> AgentHandle:
        return self._registry.get(agent_id).handle(stale=not self._engine.up)

    def get_json(self, agent_id: str) -> bytes:
        """``get`` as the JSON body of GET /agents/{id}."""
        return self._registry.get(agent_id).handle_json(stale=not self._engine.up)

    # -- logs and metrics -------------------------------------------------------------------

    async def logs(
        self, agent_id: str, *, tail: int | None, since: float | None, timestamps: bool
    ) -> builtins.list[str]:
        container_id = self._container_of(agent_id)
        _check_tail(tail)
        return await self._backend.logs(container_id, tail=tail, since=since, timestamps=timestamps)

    def stream_logs(
        self, agent_id: str, *, tail: int | None, since: float | None, timestamps: bool
    ) -> AsyncIterator[str]:
        container_id = self._container_of(agent_id)
        _check_tail(tail)
        return self._backend.stream_logs(
            container_id, tail=tail, since=since, timestamps=timestamps
        )

    async def metrics(self, agent_id: str) -> MetricsResponse:
        record = self._registry.get(agent_id)
        self._container_of(agent_id)
        if record.state is None:
            raise AgentStateError(f"agent {agent_id!r} has no container yet")
        return await self._sampler.sample(record, host_cpus=self._engine.require().cpus)

    def _container_of(self, agent_id: str) -> str:
        self._engine.require()
        record = self._registry.get(agent_id)
        if record.container_id is None:
            raise AgentStateError(f"agent {agent_id!r} has no container yet")
        return record.container_id

    # -- health -----------------------------------------------------------------------------

    async def health(self) -> tuple[bool, HealthResponse]:
        try:
            info = await self._backend.ping()
        except ParallaxError as exc:
            self._engine.lost()
            return False, HealthResponse(
                healthy=False,
                message=f"Docker engine unreachable: {exc.message}",
                code="SOCKET_ERROR",
                runtime=RuntimeInfo(active_agents=self._registry.active_count(), synced=False),
            )
        return True, HealthResponse(
            healthy=True,
            message=_health_message(info),
            runtime=RuntimeInfo(
                type=info.platform,
                active_agents=self._registry.active_count(),
                synced=self._engine.up,
                engine_version=info.version,
                api_version=info.api_version,
            ),
            nodes=self._nodes(info),
        )

    def _nodes(self, info: EngineInfo) -> builtins.list[NodeHealth] | None:
        """A cluster's machines with the agents placed on each (None on one engine)."""
        if not info.nodes:
            return None
        placed: dict[str, int] = {}
        for record in self._registry:
            node = record.state.node if record.state is not None else None
            if node is not None and record.state is not None and record.state.running:
                placed[node] = placed.get(node, 0) + 1
        return [
            NodeHealth(
                id=node.id,
                name=node.name,
                role=node.role,
                state=node.state,
                availability=node.availability,
                leader=node.leader,
                agents=placed.get(node.name, 0),
            )
            for node in info.nodes
        ]


def _health_message(info: EngineInfo) -> str:
    if not info.nodes:
        return "Docker runtime is healthy"
    usable = sum(1 for node in info.nodes if node.schedulable)
    lost = len(info.nodes) - usable
    text = f"{info.platform} runtime is healthy: {usable} of {len(info.nodes)} nodes take agents"
    return text + (f" ({lost} down or drained)" if lost else "")


def _check_tail(tail: int | None) -> None:
    if tail is not None and not 0 <= tail <= MAX_LOG_TAIL:
        raise ValidationError(f"tail must be between 0 and {MAX_LOG_TAIL}")
