"""Garbage collection on request: find, and remove, what agents left behind.

Leftovers are managed containers that no longer run an agent (exited, or created by a spawn
that never finished), managed networks no agent uses (never the default network), managed
volumes no container uses (never an execution's: ``DELETE /executions/{id}/resources`` removes
those), and pooled containers no live pool holds. ``dry_run`` reports without removing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from parallax_docker.backends.base import Backend
from parallax_docker.backends.capabilities import WarmStart
from parallax_docker.config import Settings
from parallax_docker.errors import ParallaxError
from parallax_docker.models import AgentStatus, GcReport
from parallax_docker.runtime.engine_link import EngineLink
from parallax_docker.runtime.labels import EXECUTION_LABEL, container_name
from parallax_docker.runtime.networks import unused_networks
from parallax_docker.runtime.operations import Operations
from parallax_docker.runtime.pool.claims import ClaimStore
from parallax_docker.runtime.pool.pool import leftover_pool_containers, remove_pool_container
from parallax_docker.runtime.registry import Registry


class GarbageCollector:
    def __init__(
        self,
        *,
        settings: Settings,
        backend: Backend,
        registry: Registry,
        engine: EngineLink,
        operations: Operations,
        selector: Mapping[str, str],
        claims: ClaimStore,
        warm: WarmStart | None,
        pool_holds: Callable[[], set[str]] = set,
    ) -> None:
        self._settings = settings
        self._backend = backend
        self._registry = registry
        self._engine = engine
        self._operations = operations
        self._selector = dict(selector)
        self._claims = claims
        self._warm = warm
        self._pool_holds = pool_holds

    async def collect(self, *, dry_run: bool) -> GcReport:
        self._engine.require()
        now = time.time()
        leftovers = [
            record
            for record in self._registry
            if not record.in_operation
            and record.state is not None
            and (
                record.state.status == "created"
                or record.status in (AgentStatus.STOPPED, AgentStatus.ERROR)
            )
        ]
        networks = await unused_networks(
            self._backend, self._registry, self._selector, self._settings, now
        )
        volumes = [
            vol.name
            for vol in await self._backend.list_volumes(self._selector, unused_only=True)
            if EXECUTION_LABEL not in vol.labels
        ]
        pooled = (
            await leftover_pool_containers(
                self._backend, self._settings.instance, self._claims, self._pool_holds
            )
            if self._warm is not None
            else []
        )
        report = GcReport(
            containers=sorted([container_name(r.id) for r in leftovers] + [s.name for s in pooled]),
            networks=sorted(networks),
            volumes=sorted(volumes),
            removed=not dry_run,
        )
        if dry_run:
            return report
        failed: list[str] = []
        for record in leftovers:
            try:
                await self._operations.remove_container(record, "removed by gc")
            except ParallaxError:
                failed.append(container_name(record.id))
        for state in pooled:
            try:
                if self._warm is not None:
                    await remove_pool_container(self._warm, self._claims, state)
            except ParallaxError:
                failed.append(state.name)
        for name in networks:
            try:
                await self._backend.remove_network(name)
            except ParallaxError:
                failed.append(name)
        for name in volumes:
            try:
                await self._backend.remove_volume(name)
            except ParallaxError:
                failed.append(name)
        report.failed = failed
        return report
