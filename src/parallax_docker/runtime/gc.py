"""Garbage collection on request: find, and remove, what agents left behind.

Leftovers are managed containers that no longer run an agent (exited, or created by a spawn
that never finished), managed networks no agent uses (never the default network), and managed
volumes no container uses. ``dry_run`` reports without removing.
"""

from __future__ import annotations

import time

from parallax_docker.backends.base import Backend
from parallax_docker.config import Settings
from parallax_docker.errors import ParallaxError
from parallax_docker.models import AgentStatus, GcReport
from parallax_docker.runtime.clock import parse_engine_time
from parallax_docker.runtime.executions import EXECUTION_LABEL
from parallax_docker.runtime.labels import container_name
from parallax_docker.runtime.pool import leftover_pool_containers, remove_pool_container
from parallax_docker.runtime.service import AgentService


async def collect_garbage(
    service: AgentService, backend: Backend, settings: Settings, *, dry_run: bool
) -> GcReport:
    now = time.time()
    leftovers = [
        record
        for record in service.registry
        if not record.transitioning
        and not record.stopping
        and record.state is not None
        and (
            record.state.status == "created"
            or record.status in (AgentStatus.STOPPED, AgentStatus.ERROR)
        )
    ]
    in_use = {record.labels.network for record in service.registry}
    networks = [
        net.name
        for net in await backend.list_networks(service.selector)
        if net.name != settings.docker_network
        and net.name not in in_use
        and not net.containers
        and now - (parse_engine_time(net.created) or now) >= settings.network_grace_s
    ]
    # An execution's volume holds its CLIs' logins; DELETE /executions/{id}/resources removes it.
    volumes = [
        vol.name
        for vol in await backend.list_volumes(service.selector, unused_only=True)
        if EXECUTION_LABEL not in vol.labels
    ]
    # Pooled containers no live pool holds and no claim made an agent.
    pooled = await leftover_pool_containers(
        backend,
        settings.instance,
        service.claims,
        service.pool.holds if service.pool is not None else set,
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
            await service.remove_container(record, "removed by gc")
        except ParallaxError:
            failed.append(container_name(record.id))
    for state in pooled:
        try:
            await remove_pool_container(backend, service.secrets, service.claims, state)
        except ParallaxError:
            failed.append(state.name)
    for name in networks:
        try:
            await backend.remove_network(name)
        except ParallaxError:
            failed.append(name)
    for name in volumes:
        try:
            await backend.remove_volume(name)
        except ParallaxError:
            failed.append(name)
    report.failed = failed
    return report
