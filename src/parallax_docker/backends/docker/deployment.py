"""DockerDeployment: everything the runtime runs on when it runs on one Docker engine.

One engine connection (engine/client.py) serves the core Backend and every capability: secret
delivery through host files, heartbeats through a FIFO beside them, terminals, warm start for the
pool, image building, files in and out of agents, and their ports.
"""

from __future__ import annotations

from pathlib import Path

from parallax_docker.backends.docker.agent_files import DockerFiles
from parallax_docker.backends.docker.backend import DockerBackend
from parallax_docker.backends.docker.build import DockerImageBuilding
from parallax_docker.backends.docker.cgroups import CgroupReader
from parallax_docker.backends.docker.engine import Engine, EngineClient
from parallax_docker.backends.docker.heartbeat import DockerHeartbeats
from parallax_docker.backends.docker.ports import DockerPorts
from parallax_docker.backends.docker.secrets import SecretStore
from parallax_docker.backends.docker.terminals import DockerTerminals
from parallax_docker.backends.docker.warm import DockerWarmStart


class DockerDeployment:
    def __init__(
        self,
        socket_path: str,
        *,
        secrets_dir: Path,
        request_timeout_s: float = 30.0,
        connect_timeout_s: float = 3.0,
        cgroup_root: Path | None = Path("/sys/fs/cgroup"),
        api_version: str | None = None,
    ) -> None:
        self.engine = Engine(
            EngineClient(
                socket_path,
                request_timeout_s=request_timeout_s,
                connect_timeout_s=connect_timeout_s,
                api_version=api_version,
            )
        )
        self._backend = DockerBackend(self.engine, CgroupReader(cgroup_root))
        self._secrets = SecretStore(secrets_dir)
        self._heartbeats = DockerHeartbeats(self._secrets)
        self._terminals = DockerTerminals(self.engine)
        self._warm = DockerWarmStart(self.engine, self._backend, self._secrets, self._heartbeats)
        self._images = DockerImageBuilding(self.engine, self._backend)
        self._files = DockerFiles(self.engine)
        self._ports = DockerPorts(self.engine)

    @property
    def backend(self) -> DockerBackend:
        return self._backend

    @property
    def secrets(self) -> SecretStore:
        return self._secrets

    @property
    def terminals(self) -> DockerTerminals:
        return self._terminals

    @property
    def warm_start(self) -> DockerWarmStart:
        return self._warm

    @property
    def images(self) -> DockerImageBuilding:
        return self._images

    @property
    def files(self) -> DockerFiles:
        return self._files

    @property
    def ports(self) -> DockerPorts:
        return self._ports

    @property
    def heartbeats(self) -> DockerHeartbeats:
        return self._heartbeats

    async def close(self) -> None:
        await self.engine.close()
