"""SwarmDeployment: what the runtime runs on when it runs on a Docker Swarm cluster.

The manager's engine (``DOCKER_SOCKET``, a local socket: the service runs on a manager node)
serves the core Backend, secret delivery through Swarm secrets, and image building (on the
manager, pushed to the cluster's registry). Each node's engine is reached over mutual TLS for
exec, logs, stats, terminals, files and volumes. The warm pool is not offered: a pooled
container would be claimed by writing its secrets into it on its node, and Swarm secrets are
fixed once a service runs. Nor are heartbeats (a FIFO on the service's own host) or ports (an
agent's overlay address is not routed to the manager's host); docs/swarm.md.
"""

from __future__ import annotations

import logging
from pathlib import Path

from parallax_docker.backends.docker.backend import DockerBackend
from parallax_docker.backends.docker.build import DockerImageBuilding
from parallax_docker.backends.docker.cgroups import CgroupReader
from parallax_docker.backends.docker.engine import Engine, EngineClient
from parallax_docker.backends.swarm.backend import SwarmBackend
from parallax_docker.backends.swarm.engine import SwarmAPI
from parallax_docker.backends.swarm.files import SwarmFiles
from parallax_docker.backends.swarm.networks import SwarmNetworks
from parallax_docker.backends.swarm.nodes import Nodes, tls_context
from parallax_docker.backends.swarm.placing import Placing
from parallax_docker.backends.swarm.readings import Readings
from parallax_docker.backends.swarm.registry import Registry, SwarmImageBuilding
from parallax_docker.backends.swarm.secrets import SwarmSecrets
from parallax_docker.backends.swarm.services import Services
from parallax_docker.backends.swarm.terminals import SwarmTerminals
from parallax_docker.backends.swarm.translate import Reservation
from parallax_docker.backends.swarm.volumes import SwarmVolumes
from parallax_docker.config import Settings
from parallax_docker.errors import ConfigError

log = logging.getLogger(__name__)


class SwarmDeployment:
    def __init__(
        self,
        settings: Settings,
        *,
        tls_dir: Path,
        registry: str,
    ) -> None:
        self.engine = Engine(
            EngineClient(
                settings.docker_socket,
                request_timeout_s=settings.engine_timeout_s,
                connect_timeout_s=settings.engine_connect_timeout_s,
            )
        )
        api = SwarmAPI(self.engine.client)
        self._nodes = Nodes(
            api,
            tls_context(tls_dir),
            port=settings.swarm_engine_port,
            request_timeout_s=settings.engine_timeout_s,
            connect_timeout_s=settings.engine_connect_timeout_s,
        )
        readings = Readings(api, self._nodes)
        self._secrets = SwarmSecrets(api, settings.instance)
        self.registry = Registry(self.engine, api, registry)
        networks = SwarmNetworks(self.engine, api)
        volumes = SwarmVolumes(self._nodes, api)
        self._backend = SwarmBackend(
            manager=self.engine,
            api=api,
            nodes=self._nodes,
            readings=readings,
            networks=networks,
            volumes=volumes,
            registry=self.registry,
            services=Services(
                api=api,
                readings=readings,
                placing=Placing(
                    self._nodes, readings, timeout_s=settings.swarm_placement_timeout_s
                ),
                secrets=self._secrets,
                registry=self.registry,
                networks=networks,
                volumes=volumes,
                reservation=Reservation(settings.memory_overcommit, settings.cpu_overcommit),
                manager_id=lambda: self._backend.manager_id,
            ),
        )
        self._terminals = SwarmTerminals(readings)
        self._files = SwarmFiles(readings)
        local = DockerBackend(self.engine, CgroupReader(None))
        self._images = SwarmImageBuilding(DockerImageBuilding(self.engine, local), self.registry)

    @classmethod
    def from_settings(cls, settings: Settings) -> SwarmDeployment:
        if settings.swarm_tls_dir is None or settings.swarm_registry is None:
            raise ConfigError(
                "PARALLAX_BACKEND=swarm needs PARALLAX_SWARM_TLS_DIR (the nodes' client "
                "certificate) and PARALLAX_SWARM_REGISTRY (the cluster's registry)",
                resolution="Set both; docs/swarm.md shows how scripts/swarm.sh makes them.",
            )
        if any(size.size for size in settings.pool):
            log.warning("PARALLAX_POOL has no effect on a Swarm: it offers no warm start")
        return cls(settings, tls_dir=settings.swarm_tls_dir, registry=settings.swarm_registry)

    @property
    def backend(self) -> SwarmBackend:
        return self._backend

    @property
    def secrets(self) -> SwarmSecrets:
        return self._secrets

    @property
    def terminals(self) -> SwarmTerminals:
        return self._terminals

    @property
    def warm_start(self) -> None:
        return None

    @property
    def images(self) -> SwarmImageBuilding:
        return self._images

    @property
    def files(self) -> SwarmFiles:
        return self._files

    @property
    def ports(self) -> None:
        return None

    @property
    def heartbeats(self) -> None:
        return None

    async def close(self) -> None:
        await self._secrets.close()
        await self._nodes.close()
        await self.engine.close()
