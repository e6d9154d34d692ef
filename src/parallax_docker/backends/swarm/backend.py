"""SwarmBackend: the core Backend verbs on a Docker Swarm cluster.

An agent's "container" here is its Swarm service: the id the runtime holds is the service's,
and it stays the agent's through restarts and re-placements. The manager's engine (the
runtime's ``DOCKER_SOCKET``) answers for services, networks and images; each node's engine,
over mutual TLS (nodes.py), answers for what only it knows: the container's inspect, exec,
logs, stats, and its volumes. docs/swarm.md tells the whole design.
"""

from __future__ import annotations

import builtins
import secrets
from collections.abc import AsyncIterator, Mapping

from parallax_docker.backends.base import (
    ContainerEvent,
    ContainerSpec,
    ContainerState,
    EngineInfo,
    ExecExit,
    ExecOutput,
    ExecResult,
    ExecSpec,
    ImageInfo,
    NetworkInfo,
    StatsSample,
    VolumeInfo,
)
from parallax_docker.backends.docker import files, logs, processes
from parallax_docker.backends.docker import translate as docker_translate
from parallax_docker.backends.docker.engine import Engine
from parallax_docker.backends.docker.errors import engine_call
from parallax_docker.backends.swarm.engine import SwarmAPI
from parallax_docker.backends.swarm.events import SwarmEvents
from parallax_docker.backends.swarm.networks import SwarmNetworks
from parallax_docker.backends.swarm.nodes import Nodes, on_node
from parallax_docker.backends.swarm.readings import Readings
from parallax_docker.backends.swarm.registry import Registry
from parallax_docker.backends.swarm.services import Services
from parallax_docker.backends.swarm.volumes import SwarmVolumes
from parallax_docker.errors import (
    AgentNotFoundError,
    AgentStateError,
    ConfigError,
    NotFoundError,
)

_IMAGE_FILES_KEPT = 64


class SwarmBackend:
    """The Backend protocol (backends/base.py) on a Docker Swarm, through one of its managers."""

    def __init__(
        self,
        *,
        manager: Engine,
        api: SwarmAPI,
        nodes: Nodes,
        readings: Readings,
        services: Services,
        networks: SwarmNetworks,
        volumes: SwarmVolumes,
        registry: Registry,
    ) -> None:
        self._manager = manager
        self._registry = registry
        self._api = api
        self._nodes = nodes
        self._readings = readings
        self._services = services
        self._networks = networks
        self._volumes = volumes
        self._events = SwarmEvents(manager, nodes, readings)
        self.manager_id = ""
        # Files read from images by digest (their content cannot change): the account files
        # every spawn of an image's named user reads.
        self._image_files: dict[tuple[str, str, int], bytes | None] = {}

    async def ping(self) -> EngineInfo:
        async with engine_call("engine", "inspect"):
            version = await self._manager.system.version()
            info = await self._manager.system.info()
        swarm = info.get("Swarm") or {}
        if not swarm.get("ControlAvailable"):
            raise ConfigError(
                "the engine on DOCKER_SOCKET is not a Swarm manager",
                resolution="Run the service on a manager node (docker swarm init / join as "
                "manager), with DOCKER_SOCKET its engine's socket.",
            )
        self.manager_id = str(swarm.get("NodeID") or "")
        nodes = await self._nodes.list(fresh=True)
        usable = [node for node in nodes if node.schedulable]
        return EngineInfo(
            version=str(version.get("Version", "")),
            api_version=str(version.get("ApiVersion", "")),
            memory_bytes=sum(node.memory_bytes for node in usable),
            cpus=int(sum(node.cpus for node in usable)),
            cgroup_version=str(info.get("CgroupVersion") or "1"),
            warnings=tuple(info.get("Warnings") or ()),
            runtimes=tuple(sorted(self._nodes.runtimes)),
            platform="swarm",
            nodes=tuple(sorted(nodes, key=lambda node: node.name)),
        )

    def available_memory(self) -> int | None:
        # The manager's own MemAvailable says nothing of the other nodes: admission counts
        # limits against the schedulable nodes' memory, and the scheduler's reservations place
        # each agent on a node with room for it.
        return None

    # -- networks ---------------------------------------------------------------------------

    async def ensure_network(
        self, name: str, labels: Mapping[str, str], internal: bool = False
    ) -> dict[str, str]:
        return await self._networks.ensure(name, labels, internal)

    async def get_network(self, name: str) -> NetworkInfo | None:
        return await self._networks.get(name)

    async def remove_network(self, name: str) -> None:
        await self._networks.remove(name)

    async def list_networks(self, labels: Mapping[str, str]) -> builtins.list[NetworkInfo]:
        return await self._networks.list(labels)

    # -- volumes ----------------------------------------------------------------------------

    async def get_volume(self, name: str) -> VolumeInfo | None:
        return await self._volumes.get(name)

    async def list_volumes(
        self, labels: Mapping[str, str], unused_only: bool = False
    ) -> builtins.list[VolumeInfo]:
        return await self._volumes.list(labels, unused_only)

    async def remove_volume(self, name: str) -> None:
        await self._volumes.remove(name)

    # -- images -----------------------------------------------------------------------------

    async def get_image(self, ref: str) -> ImageInfo | None:
        found = await self._registry.local(ref)
        return docker_translate.image_info(found) if found is not None else None

    # -- agents (services) ------------------------------------------------------------------

    async def create(self, spec: ContainerSpec) -> str:
        return await self._services.create(spec)

    async def start(self, container_id: str) -> None:
        await self._services.start(container_id)

    async def stop(self, container_id: str, timeout_s: float) -> None:
        await self._services.stop(container_id, timeout_s)

    async def kill(self, container_id: str, signal: str = "SIGKILL") -> None:
        await self._services.kill(container_id, signal)

    async def restart(self, container_id: str, timeout_s: float) -> None:
        await self._services.restart(container_id, timeout_s)

    async def remove(self, container_id: str) -> None:
        await self._services.remove(container_id)

    async def get(self, container_id: str) -> ContainerState | None:
        return await self._readings.get(container_id)

    async def list(self, labels: Mapping[str, str]) -> builtins.list[ContainerState]:
        return await self._readings.list(labels)

    async def read_file(self, container_id: str, path: str, max_bytes: int) -> bytes | None:
        try:
            node, engine, placed = await self._readings.placed(container_id)
        except AgentStateError:
            return await self._read_image_file(container_id, path, max_bytes)
        try:
            async with on_node(node), engine_call("container", "stat", placed[:12]):
                raw = await engine.containers.read_archive(
                    placed, path, files.archive_budget(max_bytes)
                )
        except NotFoundError:
            return None
        return files.regular_file(raw, max_bytes)

    async def _read_image_file(self, service_id: str, path: str, max_bytes: int) -> bytes | None:
        """A file of a service not placed yet: read from its image (by digest, so what was read
        is kept), in a container the manager makes for the moment (never started)."""
        service = await self._readings.service(service_id)
        if service is None:
            raise AgentNotFoundError(f"service {service_id[:12]} does not exist")
        template = (service.get("Spec") or {}).get("TaskTemplate") or {}
        image = str((template.get("ContainerSpec") or {}).get("Image", ""))
        key = (image, path, max_bytes)
        if key not in self._image_files:
            if len(self._image_files) >= _IMAGE_FILES_KEPT:
                self._image_files.pop(next(iter(self._image_files)))
            self._image_files[key] = await self._read_from_image(image, path, max_bytes)
        return self._image_files[key]

    async def _read_from_image(self, image: str, path: str, max_bytes: int) -> bytes | None:
        async with engine_call("container", "create", image[:80]):
            made = await self._manager.containers.create(
                f"parallax-read-{secrets.token_hex(6)}",
                {"Image": image, "Cmd": ["true"], "NetworkDisabled": True},
            )
        container_id = str(made["Id"])
        try:
            async with engine_call("container", "stat", container_id[:12]):
                raw = await self._manager.containers.read_archive(
                    container_id, path, files.archive_budget(max_bytes)
                )
            return files.regular_file(raw, max_bytes)
        except NotFoundError:
            return None
        finally:
            async with engine_call("container", "remove", container_id[:12]):
                await self._manager.containers.remove(container_id)

    # -- processes (on the agent's node) ----------------------------------------------------

    async def exec(self, container_id: str, spec: ExecSpec, timeout_s: float) -> ExecResult:
        node, engine, placed = await self._readings.placed(container_id)
        async with on_node(node):
            return await processes.run(engine, placed, spec, timeout_s)

    async def stream_exec(
        self, container_id: str, spec: ExecSpec
    ) -> AsyncIterator[ExecOutput | ExecExit]:
        node, engine, placed = await self._readings.placed(container_id)
        async with on_node(node):
            stream = processes.stream_exec(engine, placed, spec)
            try:
                async for item in stream:
                    yield item
            finally:
                await stream.aclose()

    # -- observation ------------------------------------------------------------------------

    async def logs(
        self, container_id: str, *, tail: int | None, since: float | None, timestamps: bool
    ) -> builtins.list[str]:
        node, engine, placed = await self._readings.placed(container_id)
        async with on_node(node):
            return await logs.read_logs(
                engine, placed, tail=tail, since=since, timestamps=timestamps
            )

    async def stream_logs(
        self, container_id: str, *, tail: int | None, since: float | None, timestamps: bool
    ) -> AsyncIterator[str]:
        node, engine, placed = await self._readings.placed(container_id)
        async with on_node(node):
            async for line in logs.follow_logs(
                engine, placed, tail=tail, since=since, timestamps=timestamps
            ):
                yield line

    async def usage(self, state: ContainerState) -> StatsSample:
        node, engine, placed = await self._readings.placed(state.id)
        async with on_node(node), engine_call("container", "stats", placed[:12]):
            return docker_translate.stats_sample(await engine.containers.stats(placed))

    def watch_events(
        self, labels: Mapping[str, str], since_ns: int | None = None
    ) -> AsyncIterator[ContainerEvent]:
        return self._events.watch(labels, since_ns)
