"""DockerBackend: the core Backend verbs on a Docker engine, over our own Engine API client.

Every call carries a timeout (engine/client.py) and every failure leaves through
``engine_call`` as a project error. Streams (events, followed logs, exec output) are plain async
iterators on the event loop, so none of them holds a thread.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

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
from parallax_docker.backends.docker import files, host_memory, logs, processes, translate
from parallax_docker.backends.docker.cgroups import CgroupReader
from parallax_docker.backends.docker.engine import Engine, label_filters
from parallax_docker.backends.docker.errors import (
    engine_call,
    idempotent_call,
    warnings_failure,
)
from parallax_docker.backends.docker.verify import missing_program, program_paths, verify_created
from parallax_docker.errors import (
    AgentNotFoundError,
    ConflictError,
    ImageNotFoundError,
    NetworkError,
    NetworkForbiddenError,
    NotFoundError,
    ParallaxError,
)

log = logging.getLogger(__name__)

# Inspecting many containers at once is cheap for the engine but each call is a request; keep a
# few in flight rather than hundreds.
_INSPECT_CONCURRENCY = 16


class DockerBackend:
    """The Backend protocol (backends/base.py) on one Docker engine."""

    def __init__(self, engine: Engine, cgroups: CgroupReader) -> None:
        self._engine = engine
        # Usage counters straight from the host's cgroup files when they are visible from here.
        self._cgroups = cgroups

    async def ping(self) -> EngineInfo:
        async with engine_call("engine", "inspect"):
            version = await self._engine.system.version()
            info = await self._engine.system.info()
        return EngineInfo(
            version=str(version.get("Version", "")),
            api_version=str(version.get("ApiVersion", "")),
            memory_bytes=int(info.get("MemTotal") or 0),
            cpus=int(info.get("NCPU") or 0),
            cgroup_version=str(info.get("CgroupVersion") or "1"),
            warnings=tuple(info.get("Warnings") or ()),
            runtimes=tuple(sorted((info.get("Runtimes") or {}).keys())),
            live_restore=bool(info.get("LiveRestoreEnabled")),
        )

    def available_memory(self) -> int | None:
        # The engine's host is this host (a Unix socket), and Linux says it in /proc/meminfo.
        return host_memory.available()

    # -- networks ---------------------------------------------------------------------------

    async def _find_network(self, name: str) -> dict[str, Any] | None:
        async with engine_call("network", "list", name):
            return await self._engine.networks.find(name)

    async def ensure_network(
        self, name: str, labels: Mapping[str, str], internal: bool = False
    ) -> dict[str, str]:
        found = await self._find_network(name)
        if found is None:
            body = {
                "Name": name,
                "CheckDuplicate": True,
                "Driver": "bridge",
                "Internal": internal,
                "Labels": dict(labels),
                "Attachable": True,
            }
            try:
                async with engine_call("network", "create", name):
                    await self._engine.networks.create(body)
                return dict(labels)
            except ConflictError:
                # Another creator won the race; that is success for us.
                found = await self._find_network(name)
                if found is None:
                    raise
        _check_internal(found, internal)
        return dict(found.get("Labels") or {})

    async def get_network(self, name: str) -> NetworkInfo | None:
        found = await self._find_network(name)
        if found is None:
            return None
        # The list leaves Containers empty; the inspect counts the endpoints.
        try:
            async with engine_call("network", "inspect", name):
                return translate.network_info(await self._engine.networks.inspect(found["Id"]))
        except NetworkError:
            return None

    async def remove_network(self, name: str) -> None:
        async with idempotent_call("network", "remove", name):
            await self._engine.networks.remove(name)

    async def list_networks(self, labels: Mapping[str, str]) -> builtins.list[NetworkInfo]:
        async with engine_call("network", "list"):
            found = await self._engine.networks.list(label_filters(labels))
        infos = []
        for network in found:
            try:
                async with engine_call("network", "inspect", str(network.get("Name", ""))):
                    infos.append(
                        translate.network_info(await self._engine.networks.inspect(network["Id"]))
                    )
            except NetworkError:
                continue  # removed since the list
        return infos

    # -- volumes ----------------------------------------------------------------------------

    async def get_volume(self, name: str) -> VolumeInfo | None:
        try:
            async with engine_call("volume", "inspect", name):
                return translate.volume_info(await self._engine.volumes.inspect(name))
        except NotFoundError:
            return None

    async def list_volumes(
        self, labels: Mapping[str, str], unused_only: bool = False
    ) -> builtins.list[VolumeInfo]:
        extra = {"dangling": ["true"]} if unused_only else {}
        async with engine_call("volume", "list"):
            found = await self._engine.volumes.list(label_filters(labels, **extra))
        return [translate.volume_info(v) for v in found]

    async def remove_volume(self, name: str) -> None:
        async with idempotent_call("volume", "remove", name):
            await self._engine.volumes.remove(name)

    # -- images -----------------------------------------------------------------------------

    async def get_image(self, ref: str) -> ImageInfo | None:
        try:
            async with engine_call("image", "inspect", ref):
                return translate.image_info(await self._engine.images.inspect(ref))
        except ImageNotFoundError:
            return None

    # -- containers -------------------------------------------------------------------------

    async def create(self, spec: ContainerSpec) -> str:
        async with engine_call("container", "create", spec.name):
            created = await self._engine.containers.create(
                spec.name, translate.container_config(spec)
            )
        container_id = str(created["Id"])
        try:
            refused = warnings_failure(created)
            if refused is not None:
                raise refused
            async with engine_call("container", "inspect", container_id[:12]):
                inspect = await self._engine.containers.inspect(container_id)
            verify_created(spec, inspect)
            if spec.entrypoint:
                await self._require_program(container_id, spec, inspect)
        except BaseException:
            await asyncio.shield(self._discard(container_id))
            raise
        return container_id

    async def _require_program(
        self, container_id: str, spec: ContainerSpec, inspect: Mapping[str, Any]
    ) -> None:
        """Refuse a container whose entrypoint program is not in its image: it would die at
        once, after it looked started."""
        assert spec.entrypoint
        program = spec.entrypoint[0]
        for path in program_paths(program, inspect):
            try:
                async with engine_call("container", "stat", container_id[:12]):
                    await self._engine.containers.stat_path(container_id, path)
                return
            except NotFoundError:
                continue
        raise missing_program(spec.image, program)

    async def _discard(self, container_id: str) -> None:
        try:
            await self.remove(container_id)
        except ParallaxError as exc:
            log.warning("could not remove half-made container %s: %s", container_id[:12], exc.code)

    async def start(self, container_id: str) -> None:
        async with idempotent_call("container", "start", container_id[:12]):
            await self._engine.containers.start(container_id)

    async def stop(self, container_id: str, timeout_s: float) -> None:
        async with idempotent_call("container", "stop", container_id[:12]):
            await self._engine.containers.stop(container_id, max(0, round(timeout_s)))

    async def kill(self, container_id: str, signal: str = "SIGKILL") -> None:
        async with idempotent_call("container", "kill", container_id[:12]):
            await self._engine.containers.kill(container_id, signal)

    async def restart(self, container_id: str, timeout_s: float) -> None:
        async with engine_call("container", "restart", container_id[:12]):
            await self._engine.containers.restart(container_id, max(0, round(timeout_s)))

    async def remove(self, container_id: str) -> None:
        self._cgroups.forget(container_id)
        async with idempotent_call("container", "remove", container_id[:12]):
            await self._engine.containers.remove(container_id)

    async def read_file(self, container_id: str, path: str, max_bytes: int) -> bytes | None:
        try:
            async with engine_call("container", "stat", container_id[:12]):
                raw = await self._engine.containers.read_archive(
                    container_id, path, files.archive_budget(max_bytes)
                )
        except NotFoundError:
            return None
        return files.regular_file(raw, max_bytes)

    async def get(self, container_id: str) -> ContainerState | None:
        try:
            async with engine_call("container", "inspect", container_id[:12]):
                return translate.container_state(
                    await self._engine.containers.inspect(container_id)
                )
        except AgentNotFoundError:
            return None

    async def list(self, labels: Mapping[str, str]) -> builtins.list[ContainerState]:
        async with engine_call("container", "list"):
            entries = await self._engine.containers.list(label_filters(labels))
        gate = asyncio.Semaphore(_INSPECT_CONCURRENCY)

        async def one(entry: Mapping[str, Any]) -> ContainerState | None:
            async with gate:
                return await self.get(str(entry["Id"]))

        states = await asyncio.gather(*(one(e) for e in entries))
        return [s for s in states if s is not None]

    # -- processes --------------------------------------------------------------------------

    async def exec(self, container_id: str, spec: ExecSpec, timeout_s: float) -> ExecResult:
        return await processes.run(self._engine, container_id, spec, timeout_s)

    def stream_exec(
        self, container_id: str, spec: ExecSpec
    ) -> AsyncIterator[ExecOutput | ExecExit]:
        return processes.stream_exec(self._engine, container_id, spec)

    # -- observation ------------------------------------------------------------------------

    async def logs(
        self, container_id: str, *, tail: int | None, since: float | None, timestamps: bool
    ) -> builtins.list[str]:
        return await logs.read_logs(
            self._engine, container_id, tail=tail, since=since, timestamps=timestamps
        )

    def stream_logs(
        self, container_id: str, *, tail: int | None, since: float | None, timestamps: bool
    ) -> AsyncIterator[str]:
        return logs.follow_logs(
            self._engine, container_id, tail=tail, since=since, timestamps=timestamps
        )

    async def usage(self, state: ContainerState) -> StatsSample:
        # A few small file reads instead of a round trip through dockerd; the engine answers
        # when the files are not visible from here (remote engine, no pid, not running).
        sample = self._cgroups.read_usage(state.id, state.pid if state.running else None)
        if sample is not None:
            return sample
        async with engine_call("container", "stats", state.id[:12]):
            return translate.stats_sample(await self._engine.containers.stats(state.id))

    async def watch_events(
        self, labels: Mapping[str, str], since_ns: int | None = None
    ) -> AsyncIterator[ContainerEvent]:
        filters = label_filters(labels, type=["container"])
        since = None
        if since_ns is not None:
            since = f"{since_ns // 1_000_000_000}.{since_ns % 1_000_000_000:09d}"
        async with engine_call("engine", "events"):
            stream = self._engine.events.stream(filters, since)
            try:
                async for message in stream:
                    event = translate.container_event(message)
                    if event is not None:
                        yield event
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()


def _check_internal(network: Mapping[str, Any], internal: bool) -> None:
    """Fail closed: an agent asked for no egress must not join a routed network."""
    if internal and not network.get("Internal"):
        name = str(network.get("Name", ""))
        raise NetworkForbiddenError(
            f"network {name!r} exists but is not internal",
            resolution=f"Remove it (docker network rm {name}); the runtime re-creates it with "
            "Internal set.",
        )
