"""DockerBackend: a thin async adapter over the Docker Engine API (aiodocker underneath).

Every call carries a timeout (aiodocker has none by default) and every failure leaves through
``engine_call`` as a project error. Streams (events, followed logs) are plain async iterators on
the event loop, so none of them holds a thread.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiodocker
import aiohttp

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
    TerminalSession,
    VolumeInfo,
)
from parallax_docker.backends.docker import exec as docker_exec
from parallax_docker.backends.docker import files as docker_files
from parallax_docker.backends.docker import translate
from parallax_docker.backends.docker.cgroups import CgroupReader
from parallax_docker.backends.docker.connection import EngineConnection, timeouts
from parallax_docker.backends.docker.errors import engine_call
from parallax_docker.backends.docker.verify import verify_created
from parallax_docker.errors import InsecureSpawnError, NetworkForbiddenError

log = logging.getLogger(__name__)

# Inspecting many containers at once is cheap for the engine but each call is a request; keep a
# few in flight rather than hundreds.
_INSPECT_CONCURRENCY = 16


class DockerBackend:
    """The Backend protocol on a local Docker engine reached through its Unix socket."""

    def __init__(
        self,
        socket_path: str,
        *,
        request_timeout_s: float = 30.0,
        connect_timeout_s: float = 3.0,
        cgroup_root: Path | None = Path("/sys/fs/cgroup"),
    ) -> None:
        # Usage counters straight from the host's cgroup files (None: always ask the engine).
        self._cgroups = CgroupReader(cgroup_root)
        self._timeout, self._stream_timeout = timeouts(request_timeout_s, connect_timeout_s)
        self._connection = EngineConnection(socket_path, self._timeout)

    def _client(self) -> aiodocker.Docker:
        return self._connection.client()

    async def close(self) -> None:
        await self._connection.close()

    async def _json(
        self,
        path: str,
        method: str = "GET",
        *,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> Any:
        client = self._client()
        return await client._query_json(
            path,
            method,
            params=dict(params or {}),
            data=data,
            timeout=timeout if timeout is not None else self._timeout,
        )

    async def _json_or_none(self, path: str) -> Any:
        """GET ``path``; None where the engine answers 404."""
        try:
            return await self._json(path)
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return None
            raise

    # -- engine -----------------------------------------------------------------------------

    async def ping(self) -> EngineInfo:
        async with engine_call("engine"):
            version = await self._json("version")
            info = await self._json("info")
        return EngineInfo(
            version=str(version.get("Version", "")),
            api_version=str(version.get("ApiVersion", "")),
            memory_bytes=int(info.get("MemTotal") or 0),
            cpus=int(info.get("NCPU") or 0),
            cgroup_version=str(info.get("CgroupVersion") or "1"),
            warnings=tuple(info.get("Warnings") or ()),
            runtimes=tuple(sorted((info.get("Runtimes") or {}).keys())),
        )

    # -- networks and volumes ---------------------------------------------------------------

    async def _find_network(self, name: str) -> dict[str, Any] | None:
        # GET /networks/{name} also matches id prefixes; list with a filter, then match exactly.
        filters = json.dumps({"name": [name]})
        async with engine_call("network", name):
            found = await self._json("networks", params={"filters": filters})
        for net in found:
            if net.get("Name") == name:
                return dict(net)
        return None

    async def network_exists(self, name: str) -> bool:
        return await self._find_network(name) is not None

    async def ensure_network(
        self, name: str, labels: Mapping[str, str], internal: bool = False
    ) -> dict[str, str]:
        found = await self._find_network(name)
        if found is not None:
            _check_internal(found, internal)
            return dict(found.get("Labels") or {})
        body = {
            "Name": name,
            "CheckDuplicate": True,
            "Driver": "bridge",
            "Internal": internal,
            "Labels": dict(labels),
            "Attachable": True,
        }
        try:
            async with engine_call("network", name):
                await self._json("networks/create", "POST", data=body)
        except Exception:
            # Another creator may have won the race; that is success for us.
            raced = await self._find_network(name)
            if raced is None:
                raise
            _check_internal(raced, internal)
            return dict(raced.get("Labels") or {})
        return dict(labels)

    async def remove_network(self, name: str) -> None:
        async with engine_call("network", name):
            await self._json(f"networks/{name}", "DELETE")

    async def list_networks(self, labels: Mapping[str, str]) -> builtins.list[NetworkInfo]:
        filters = json.dumps({"label": [f"{k}={v}" for k, v in labels.items()]})
        async with engine_call("network"):
            found = await self._json("networks", params={"filters": filters})
            # The list endpoint leaves Containers empty; inspect each to count endpoints.
            details = [await self._json_or_none(f"networks/{net['Id']}") for net in found]
        return [translate.network_info(d) for d in details if d is not None]

    async def list_volumes(
        self, labels: Mapping[str, str], unused_only: bool = False
    ) -> builtins.list[VolumeInfo]:
        wanted: dict[str, list[str]] = {"label": [f"{k}={v}" for k, v in labels.items()]}
        if unused_only:
            wanted["dangling"] = ["true"]
        async with engine_call("volume"):
            found = await self._json("volumes", params={"filters": json.dumps(wanted)})
        return [translate.volume_info(v) for v in found.get("Volumes") or ()]

    async def remove_volume(self, name: str) -> None:
        async with engine_call("volume", name):
            try:
                await self._json(f"volumes/{name}", "DELETE")
            except aiodocker.DockerError as exc:
                if exc.status != 404:
                    raise

    async def volume_labels(self, name: str) -> dict[str, str] | None:
        async with engine_call("volume", name):
            data = await self._json_or_none(f"volumes/{name}")
        return None if data is None else dict(data.get("Labels") or {})

    # -- images -----------------------------------------------------------------------------

    async def get_image(self, ref: str) -> ImageInfo | None:
        async with engine_call("image", ref):
            data = await self._json_or_none(f"images/{ref}/json")
        return None if data is None else translate.image_info(data)

    # -- containers -------------------------------------------------------------------------

    async def create(self, spec: ContainerSpec) -> str:
        config = translate.container_config(spec)
        async with engine_call("container", spec.name):
            created = await self._json(
                "containers/create", "POST", params={"name": spec.name}, data=config
            )
        container_id = str(created["Id"])
        try:
            # The engine drops limits it cannot enforce and says so only in Warnings: fail closed.
            warnings = [w for w in created.get("Warnings") or () if w]
            if warnings:
                raise InsecureSpawnError(
                    "the Docker engine could not apply every limit: " + "; ".join(warnings)[:500]
                )
            verify_created(spec, await self.inspect_raw(container_id))
        except BaseException:
            await self._discard(container_id)
            raise
        return container_id

    async def _discard(self, container_id: str) -> None:
        try:
            await self.remove(container_id, force=True)
        except Exception:
            log.warning("could not remove half-made container %s", container_id[:12])

    async def start(self, container_id: str) -> None:
        async with engine_call("container", container_id[:12]):
            await self._json(f"containers/{container_id}/start", "POST")

    async def stop(self, container_id: str, timeout_s: float) -> None:
        grace = max(0, round(timeout_s))
        # The engine holds the request for the whole grace period, so allow for it.
        timeout = aiohttp.ClientTimeout(
            total=grace + (self._timeout.total or 30), connect=self._timeout.connect
        )
        async with engine_call("container", container_id[:12]):
            try:
                await self._json(
                    f"containers/{container_id}/stop", "POST", params={"t": grace}, timeout=timeout
                )
            except aiodocker.DockerError as exc:
                if exc.status != 304:  # already stopped
                    raise

    async def kill(self, container_id: str, signal: str = "SIGKILL") -> None:
        async with engine_call("container", container_id[:12]):
            try:
                await self._json(
                    f"containers/{container_id}/kill", "POST", params={"signal": signal}
                )
            except aiodocker.DockerError as exc:
                if exc.status != 409:  # not running
                    raise

    async def remove(self, container_id: str, force: bool = True) -> None:
        self._cgroups.forget(container_id)
        async with engine_call("container", container_id[:12]):
            try:
                await self._json(
                    f"containers/{container_id}", "DELETE", params={"force": force, "v": True}
                )
            except aiodocker.DockerError as exc:
                if exc.status == 404:
                    return
                if exc.status == 409:  # removal already in progress
                    return
                raise

    async def restart(self, container_id: str, timeout_s: float) -> None:
        grace = max(0, round(timeout_s))
        timeout = aiohttp.ClientTimeout(
            total=grace + (self._timeout.total or 30), connect=self._timeout.connect
        )
        async with engine_call("container", container_id[:12]):
            await self._json(
                f"containers/{container_id}/restart", "POST", params={"t": grace}, timeout=timeout
            )

    async def update_limits(self, container_id: str, memory_bytes: int, nano_cpus: int) -> None:
        body = {"Memory": memory_bytes, "MemorySwap": memory_bytes, "NanoCpus": nano_cpus}
        async with engine_call("container", container_id[:12]):
            answer = await self._json(f"containers/{container_id}/update", "POST", data=body)
        # As at create: a limit the engine says it could not apply is a failure.
        warnings = [w for w in (answer or {}).get("Warnings") or () if w]
        if warnings:
            raise InsecureSpawnError(
                "the Docker engine could not apply every limit: " + "; ".join(warnings)[:500]
            )

    async def rename(self, container_id: str, name: str) -> None:
        async with engine_call("container", name):
            await self._json(f"containers/{container_id}/rename", "POST", params={"name": name})

    async def reconnect(self, container_id: str, network: str, aliases: tuple[str, ...]) -> None:
        async with engine_call("network", network):
            await self._json(
                f"networks/{network}/disconnect",
                "POST",
                data={"Container": container_id, "Force": True},
            )
            await self._json(
                f"networks/{network}/connect",
                "POST",
                data={"Container": container_id, "EndpointConfig": {"Aliases": list(aliases)}},
            )

    async def inspect_raw(self, container_id: str) -> dict[str, Any]:
        async with engine_call("container", container_id[:12]):
            return dict(await self._json(f"containers/{container_id}/json"))

    async def path_exists(self, container_id: str, path: str) -> bool:
        # The archive endpoint finds the path in the container's filesystem, started or not:
        # 200 when it is there (the body, a tar of it, is left unread), 404 when it is not.
        async with engine_call("container", container_id[:12]):
            try:
                async with self._client()._query(
                    f"containers/{container_id}/archive",
                    params={"path": path},
                    timeout=self._timeout,
                ):
                    return True
            except aiodocker.DockerError as exc:
                if exc.status == 404:
                    return False
                raise

    async def read_file(self, container_id: str, path: str, max_bytes: int) -> bytes | None:
        return await docker_files.read_file(
            self._client(), container_id, path, max_bytes=max_bytes, timeout=self._timeout
        )

    async def get(self, container_id: str) -> ContainerState | None:
        async with engine_call("container", container_id[:12]):
            data = await self._json_or_none(f"containers/{container_id}/json")
        return None if data is None else translate.container_state(data)

    async def list(self, labels: Mapping[str, str]) -> builtins.list[ContainerState]:
        filters = json.dumps({"label": [f"{k}={v}" for k, v in labels.items()]})
        async with engine_call("container"):
            entries = await self._json("containers/json", params={"all": "1", "filters": filters})
        gate = asyncio.Semaphore(_INSPECT_CONCURRENCY)

        async def one(entry: Mapping[str, Any]) -> ContainerState | None:
            async with gate:
                return await self.get(str(entry["Id"]))

        states = await asyncio.gather(*(one(e) for e in entries))
        return [s for s in states if s is not None]

    # -- exec, logs, stats ------------------------------------------------------------------

    async def exec(
        self, container_id: str, argv: tuple[str, ...], timeout_s: float, user: str | None = None
    ) -> ExecResult:
        output = bytearray()
        async with engine_call("exec", container_id[:12]):
            container = self._client().containers.container(container_id)
            execution = await container.exec(list(argv), stdout=True, stderr=True, user=user or "")
            async with asyncio.timeout(timeout_s):
                async with execution.start(detach=False) as stream:
                    while (message := await stream.read_out()) is not None:
                        if len(output) < 64 * 1024:
                            output.extend(message.data)
                info = await execution.inspect()
        code = info.get("ExitCode")
        return ExecResult(exit_code=int(code) if code is not None else -1, output=bytes(output))

    def stream_exec(
        self, container_id: str, spec: ExecSpec
    ) -> AsyncIterator[ExecOutput | ExecExit]:
        return docker_exec.stream_exec(
            self._client(),
            self._connection.socket_path,
            container_id,
            spec,
            connect_timeout_s=self._timeout.connect or 3.0,
        )

    async def open_terminal(
        self, container_id: str, spec: ExecSpec, cols: int, rows: int
    ) -> TerminalSession:
        return await docker_exec.open_terminal(
            self._client(),
            self._connection.socket_path,
            container_id,
            spec,
            cols,
            rows,
            connect_timeout_s=self._timeout.connect or 3.0,
        )

    async def logs(
        self, container_id: str, *, tail: int | None, since: float | None, timestamps: bool
    ) -> builtins.list[str]:
        params = _log_params(tail, since, timestamps, follow=False)
        async with engine_call("container", container_id[:12]):
            client = self._client()
            async with client._query(
                f"containers/{container_id}/logs", params=params, timeout=self._timeout
            ) as response:
                raw = await response.read()
        return _split_lines(_demux(raw))

    async def stream_logs(
        self, container_id: str, *, tail: int | None, since: float | None, timestamps: bool
    ) -> AsyncIterator[str]:
        params = _log_params(tail, since, timestamps, follow=True)
        pending = b""
        async with engine_call("container", container_id[:12]):
            client = self._client()
            async with client._query(
                f"containers/{container_id}/logs", params=params, timeout=self._stream_timeout
            ) as response:
                reader = _FrameReader(response.content)
                while (chunk := await reader.next_payload()) is not None:
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        yield line.decode("utf-8", "replace")
        if pending:
            yield pending.decode("utf-8", "replace")

    async def stats(self, container_id: str) -> StatsSample:
        # one-shot skips the engine's second sample (a second of waiting); the caller keeps the
        # previous sample to compute rates.
        async with engine_call("container", container_id[:12]):
            data = await self._json(
                f"containers/{container_id}/stats", params={"stream": "0", "one-shot": "1"}
            )
        return translate.stats_sample(data)

    async def sample_usage(self, container_id: str, pid: int | None = None) -> StatsSample:
        # A few small file reads instead of a round trip through dockerd; the engine answers
        # when the files are not visible from here (remote engine, no pid, not running).
        sample = self._cgroups.read_usage(container_id, pid)
        if sample is not None:
            return sample
        return await self.stats(container_id)

    # -- events -----------------------------------------------------------------------------

    async def watch_events(
        self, labels: Mapping[str, str], since_ns: int | None = None
    ) -> AsyncIterator[ContainerEvent]:
        filters = {"type": ["container"], "label": [f"{k}={v}" for k, v in labels.items()]}
        params: dict[str, Any] = {"filters": json.dumps(filters)}
        if since_ns is not None:
            params["since"] = f"{since_ns // 1_000_000_000}.{since_ns % 1_000_000_000:09d}"
        async with engine_call("engine", "events"):
            client = self._client()
            async with client._query(
                "events", params=params, timeout=self._stream_timeout
            ) as response:
                async for line in response.content:
                    if not line.strip():
                        continue
                    event = translate.container_event(json.loads(line))
                    if event is not None:
                        yield event


def _check_internal(network: Mapping[str, Any], internal: bool) -> None:
    """Fail closed: an agent asked for no egress must not join a routed network."""
    if internal and not network.get("Internal"):
        name = str(network.get("Name", ""))
        raise NetworkForbiddenError(
            f"network {name!r} exists but is not internal",
            resolution=f"Remove it (docker network rm {name}); the runtime re-creates it with "
            "Internal set.",
        )


def _log_params(
    tail: int | None, since: float | None, timestamps: bool, follow: bool
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "stdout": "1",
        "stderr": "1",
        "follow": "1" if follow else "0",
        "timestamps": "1" if timestamps else "0",
        "tail": str(tail) if tail is not None else "all",
    }
    if since is not None:
        params["since"] = f"{since:.6f}"
    return params


def _demux(raw: bytes) -> bytes:
    """Strip the engine's 8-byte stream headers from a non-TTY log body."""
    out = bytearray()
    view = memoryview(raw)
    pos = 0
    while pos + 8 <= len(view):
        if view[pos] not in (0, 1, 2) or any(view[pos + 1 : pos + 4]):
            # Not multiplexed (a TTY container): the body is the raw output.
            return raw
        size = int.from_bytes(view[pos + 4 : pos + 8], "big")
        out.extend(view[pos + 8 : pos + 8 + size])
        pos += 8 + size
    return bytes(out)


def _split_lines(data: bytes) -> builtins.list[str]:
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


class _FrameReader:
    """Reads payloads of the engine's multiplexed stream format from an aiohttp body."""

    def __init__(self, content: aiohttp.StreamReader) -> None:
        self._content = content

    async def next_payload(self) -> bytes | None:
        try:
            header = await self._content.readexactly(8)
        except asyncio.IncompleteReadError as exc:
            return exc.partial or None
        size = int.from_bytes(header[4:8], "big")
        try:
            return await self._content.readexactly(size)
        except asyncio.IncompleteReadError as exc:
            return exc.partial or None
