"""Managed networks no agent needs any more: unused, past their grace, never the default one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from parallax_docker.backends.base import Backend
from parallax_docker.config import Settings
from parallax_docker.runtime.agent_record import AgentRecord
from parallax_docker.runtime.clock import parse_engine_time


async def unused_networks(
    backend: Backend,
    records: Iterable[AgentRecord],
    selector: Mapping[str, str],
    settings: Settings,
    now: float,
) -> list[str]:
    in_use = {record.labels.network for record in records}
    return [
        network.name
        for network in await backend.list_networks(selector)
        if network.name != settings.docker_network
        and network.name not in in_use
        and not network.containers
        and now - (parse_engine_time(network.created) or now) >= settings.network_grace_s
    ]
