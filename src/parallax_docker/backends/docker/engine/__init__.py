"""Our own small Docker Engine API client: one connection, one module per engine resource.

``Engine`` bundles them over one ``EngineClient``; each speaks the engine's JSON and raises
``EngineAPIError`` for answers outside 2xx (backends/docker/errors.py maps them).
"""

from __future__ import annotations

from parallax_docker.backends.docker.engine.client import EngineAPIError, EngineClient, TlsEndpoint
from parallax_docker.backends.docker.engine.containers import Containers, label_filters
from parallax_docker.backends.docker.engine.events import Events
from parallax_docker.backends.docker.engine.execs import Execs
from parallax_docker.backends.docker.engine.images import Images
from parallax_docker.backends.docker.engine.networks import Networks
from parallax_docker.backends.docker.engine.system import System
from parallax_docker.backends.docker.engine.volumes import Volumes

__all__ = ["Engine", "EngineAPIError", "EngineClient", "TlsEndpoint", "label_filters"]


class Engine:
    """Every resource of one engine, sharing one client (and so one connection pool)."""

    def __init__(self, client: EngineClient) -> None:
        self.client = client
        self.containers = Containers(client)
        self.networks = Networks(client)
        self.volumes = Volumes(client)
        self.images = Images(client)
        self.execs = Execs(client)
        self.events = Events(client)
        self.system = System(client)

    async def close(self) -> None:
        await self.client.close()
