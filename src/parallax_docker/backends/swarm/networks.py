"""Agents' networks on a Swarm: attachable overlay networks, labelled as the runtime's.

An overlay spans the nodes, so agents reach each other by name wherever they run (the services
use DNS round robin: a name resolves to the agent's task itself). An internal overlay has no
route out. A network called like the runtime's but not an overlay (a local bridge of the
manager's engine) cannot carry services: it is refused, fail closed.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from parallax_docker.backends.base import NetworkInfo
from parallax_docker.backends.docker import translate as docker_translate
from parallax_docker.backends.docker.engine import Engine, label_filters
from parallax_docker.backends.docker.errors import engine_call, idempotent_call
from parallax_docker.backends.swarm.engine import SwarmAPI, filters
from parallax_docker.errors import ConflictError, NetworkError, NetworkForbiddenError

# What "network": "none" becomes on a Swarm, where a service cannot go without a network: an
# internal overlay of the agent's own, with no route out and no other agent on it.
ISOLATED_PREFIX = "parallax-isolated-"


class SwarmNetworks:
    def __init__(self, engine: Engine, api: SwarmAPI) -> None:
        self._engine = engine
        self._api = api

    async def _find(self, name: str) -> dict[str, Any] | None:
        async with engine_call("network", "list", name):
            return await self._engine.networks.find(name)

    async def ensure(
        self, name: str, labels: Mapping[str, str], internal: bool = False
    ) -> dict[str, str]:
        found = await self._find(name)
        if found is None:
            body = {
                "Name": name,
                "CheckDuplicate": True,
                "Driver": "overlay",
                "Attachable": True,
                "Internal": internal,
                "Labels": dict(labels),
            }
            try:
                async with engine_call("network", "create", name):
                    await self._engine.networks.create(body)
                return dict(labels)
            except ConflictError:
                found = await self._find(name)
                if found is None:
                    raise
        if found.get("Scope") != "swarm" or found.get("Driver") != "overlay":
            raise NetworkForbiddenError(
                f"network {name!r} exists on the manager but is not a swarm overlay network",
                resolution=f"Remove it (docker network rm {name}) or choose another name; the "
                "runtime creates an overlay network.",
            )
        if internal and not found.get("Internal"):
            raise NetworkForbiddenError(
                f"network {name!r} exists but is not internal",
                resolution=f"Remove it (docker network rm {name}); the runtime re-creates it "
                "with Internal set.",
            )
        return dict(found.get("Labels") or {})

    async def isolated(self, agent_name: str, labels: Mapping[str, str]) -> str:
        """The internal overlay of one agent alone (its ``network: none``)."""
        name = ISOLATED_PREFIX + agent_name.removeprefix("parallax-")
        await self.ensure(name, labels, internal=True)
        return name

    async def get(self, name: str) -> NetworkInfo | None:
        found = await self._find(name)
        if found is None:
            return None
        users = await self._services_by_network()
        return _info(found, users)

    async def list(self, labels: Mapping[str, str]) -> builtins.list[NetworkInfo]:
        async with engine_call("network", "list"):
            found = await self._engine.networks.list(label_filters(labels))
        users = await self._services_by_network()
        return [_info(network, users) for network in found]

    async def remove(self, name: str) -> None:
        try:
            async with idempotent_call("network", "remove", name):
                await self._engine.networks.remove(name)
        except NetworkError:
            return

    async def _services_by_network(self) -> dict[str, int]:
        """How many services each network (by id and by name) carries."""
        async with engine_call("service", "list"):
            services = await self._api.services(filters())
        counts: dict[str, int] = {}
        for service in services:
            template = (service.get("Spec") or {}).get("TaskTemplate") or {}
            for attachment in template.get("Networks") or ():
                target = str(attachment.get("Target") or "")
                counts[target] = counts.get(target, 0) + 1
        return counts


def _info(network: Mapping[str, Any], users: Mapping[str, int]) -> NetworkInfo:
    info = docker_translate.network_info(network)
    used = users.get(str(network.get("Id") or ""), 0) + users.get(info.name, 0)
    return NetworkInfo(
        name=info.name,
        labels=info.labels,
        containers=used,
        created=info.created,
        internal=info.internal,
    )
