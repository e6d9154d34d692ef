"""Reaching a port an agent listens on (the Ports capability): its address on its network.

The service runs on the engine's host (or in a container on the agents' network,
docs/container.md), from where every user-defined bridge's addresses are routed; an agent on
network ``none`` has no address, and so no preview.
"""

from __future__ import annotations

from parallax_docker.backends.docker.engine import Engine
from parallax_docker.backends.docker.errors import engine_call


class DockerPorts:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def address(self, container_id: str, port: int) -> tuple[str, int] | None:
        async with engine_call("container", "inspect", container_id[:12]):
            info = await self._engine.containers.inspect(container_id)
        if not (info.get("State") or {}).get("Running"):
            return None
        networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
        for name in sorted(networks):
            address = str((networks[name] or {}).get("IPAddress") or "")
            if address:
                return address, port
        return None
