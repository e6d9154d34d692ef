"""A fake Backend for unit tests: no Docker engine, every call recorded.

It implements the protocol in ``parallax_docker.backends.base``. Tests set its attributes to
shape the "engine" (containers it lists, an exception ``ping`` or ``get_image`` raises) and read
``calls`` to see what the service asked for.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from parallax_docker.backends.base import (
    Backend,
    ContainerEvent,
    ContainerSpec,
    ContainerState,
    EngineInfo,
    ExecResult,
    ImageInfo,
    NetworkInfo,
    StatsSample,
    VolumeInfo,
)
from parallax_docker.errors import AgentNotFoundError

GIB = 1024**3


def engine_info(memory_bytes: int = 8 * GIB, cpus: int = 4) -> EngineInfo:
    return EngineInfo(
        version="20.10.24",
        api_version="1.41",
        memory_bytes=memory_bytes,
        cpus=cpus,
        cgroup_version="2",
    )


def image(user: str | None = "agent", healthcheck: tuple[str, ...] | None = None) -> ImageInfo:
    return ImageInfo(
        id="sha256:" + "0" * 64,
        tags=("parallax/agent-claude:latest",),
        user=user,
        healthcheck=healthcheck,
        # Shaped like the project's images, whose entrypoint loads the secret env file.
        labels={"parallax.image.type": "claude"},
        size=1,
        created=None,
        entrypoint=("/usr/local/bin/parallax-entrypoint",),
        cmd=("/usr/local/bin/parallax-idle",),
    )


def running_state(container_id: str, labels: Mapping[str, str]) -> ContainerState:
    return ContainerState(
        id=container_id,
        name="parallax-" + container_id,
        image="parallax/agent-claude:latest",
        labels=dict(labels),
        status="running",
        running=True,
        exit_code=None,
        oom_killed=False,
        health=None,
        created_at="2026-01-01T00:00:00Z",
        started_at="2026-01-01T00:00:01Z",
        finished_at=None,
        error=None,
        networks=("parallax-agents",),
    )


class FakeBackend:
    """An in-memory engine. Attributes ending in ``_error`` make that call raise."""

    def __init__(self) -> None:
        self.info = engine_info()
        self.images: dict[str, ImageInfo] = {}
        self.containers: dict[str, ContainerState] = {}
        self._created = 0
        self.calls: list[tuple[str, Any]] = []
        self.ping_error: BaseException | None = None
        self.get_image_error: BaseException | None = None
        self.logs_error: BaseException | None = None
        self.closed = False
        # Paths that path_exists reports missing in every container.
        self.missing_paths: set[str] = set()
        # The images' account files, as read_file finds them in a created container.
        self.files: dict[str, bytes] = {
            "/etc/passwd": b"root:x:0:0::/root:/bin/sh\nagent:x:1000:1000::/home/agent:/bin/sh\n",
            "/etc/group": b"root:x:0:\nagent:x:1000:\n",
        }

    def called(self, name: str) -> list[Any]:
        return [args for call, args in self.calls if call == name]

    async def ping(self) -> EngineInfo:
        self.calls.append(("ping", None))
        if self.ping_error is not None:
            raise self.ping_error
        return self.info

    async def close(self) -> None:
        self.closed = True

    async def ensure_network(
        self, name: str, labels: Mapping[str, str], internal: bool = False
    ) -> dict[str, str]:
        self.calls.append(("ensure_network", (name, dict(labels), internal)))
        return dict(labels)

    async def network_exists(self, name: str) -> bool:
        return True

    async def remove_network(self, name: str) -> None:
        self.calls.append(("remove_network", name))

    async def list_networks(self, labels: Mapping[str, str]) -> list[NetworkInfo]:
        self.calls.append(("list_networks", dict(labels)))
        return []

    async def list_volumes(
        self, labels: Mapping[str, str], unused_only: bool = False
    ) -> list[VolumeInfo]:
        self.calls.append(("list_volumes", (dict(labels), unused_only)))
        return []

    async def remove_volume(self, name: str) -> None:
        self.calls.append(("remove_volume", name))

    async def volume_labels(self, name: str) -> dict[str, str] | None:
        return None

    async def get_image(self, ref: str) -> ImageInfo | None:
        self.calls.append(("get_image", ref))
        if self.get_image_error is not None:
            raise self.get_image_error
        return self.images.get(ref)

    async def create(self, spec: ContainerSpec) -> str:
        self.calls.append(("create", spec))
        self._created += 1
        container_id = f"c{self._created:063d}"
        self.containers[container_id] = replace(
            running_state(container_id, spec.labels),
            memory_bytes=spec.memory_bytes,
            nano_cpus=spec.nano_cpus,
            pids_limit=spec.pids_limit,
        )
        return container_id

    async def start(self, container_id: str) -> None:
        self.calls.append(("start", container_id))

    async def stop(self, container_id: str, timeout_s: float) -> None:
        self.calls.append(("stop", container_id))

    async def kill(self, container_id: str, signal: str = "SIGKILL") -> None:
        self.calls.append(("kill", container_id))

    async def remove(self, container_id: str, force: bool = True) -> None:
        self.calls.append(("remove", container_id))
        self.containers.pop(container_id, None)

    async def restart(self, container_id: str, timeout_s: float) -> None:
        self.calls.append(("restart", container_id))

    async def update_limits(self, container_id: str, memory_bytes: int, nano_cpus: int) -> None:
        self.calls.append(("update_limits", (container_id, memory_bytes, nano_cpus)))
        state = self.containers.get(container_id)
        if state is not None:
            self.containers[container_id] = replace(
                state, memory_bytes=memory_bytes, nano_cpus=nano_cpus
            )

    async def rename(self, container_id: str, name: str) -> None:
        self.calls.append(("rename", (container_id, name)))

    async def reconnect(self, container_id: str, network: str, aliases: tuple[str, ...]) -> None:
        self.calls.append(("reconnect", (container_id, network, aliases)))

    async def get(self, container_id: str) -> ContainerState | None:
        return self.containers.get(container_id)

    async def inspect_raw(self, container_id: str) -> dict[str, Any]:
        if container_id not in self.containers:
            raise AgentNotFoundError(f"container {container_id} does not exist")
        return {"Id": container_id}

    async def read_file(self, container_id: str, path: str, max_bytes: int) -> bytes | None:
        self.calls.append(("read_file", (container_id, path)))
        return self.files.get(path)

    async def path_exists(self, container_id: str, path: str) -> bool:
        self.calls.append(("path_exists", (container_id, path)))
        return path not in self.missing_paths

    async def list(self, labels: Mapping[str, str]) -> builtins.list[ContainerState]:
        self.calls.append(("list", dict(labels)))
        return [
            state
            for state in self.containers.values()
            if all(state.labels.get(k) == v for k, v in labels.items())
        ]

    async def exec(
        self, container_id: str, argv: tuple[str, ...], timeout_s: float, user: str | None = None
    ) -> ExecResult:
        return ExecResult(exit_code=0, output=b"")

    async def logs(
        self, container_id: str, *, tail: int | None, since: float | None, timestamps: bool
    ) -> builtins.list[str]:
        self.calls.append(("logs", container_id))
        if self.logs_error is not None:
            raise self.logs_error
        return ["hello"]

    async def stream_logs(
        self, container_id: str, *, tail: int | None, since: float | None, timestamps: bool
    ) -> AsyncIterator[str]:
        yield "hello"

    async def stats(self, container_id: str) -> StatsSample:
        return StatsSample(
            cpu_total_ns=0,
            system_cpu_ns=0,
            online_cpus=1,
            memory_usage=0,
            memory_limit=0,
            pids=1,
            rx_bytes=0,
            tx_bytes=0,
        )

    async def sample_usage(self, container_id: str, pid: int | None = None) -> StatsSample:
        self.calls.append(("sample_usage", (container_id, pid)))
        return await self.stats(container_id)

    async def watch_events(
        self, labels: Mapping[str, str], since_ns: int | None = None
    ) -> AsyncIterator[ContainerEvent]:
        # The engine's stream stays open and quiet until the reconciler is cancelled.
        self.calls.append(("watch_events", dict(labels)))
        await asyncio.Event().wait()
        return
        yield  # pragma: no cover - makes this an async generator


def as_backend(fake: FakeBackend) -> Backend:
    """The fake, typed as the protocol (mypy checks that it conforms)."""
    return fake


def unit_environ(**extra: str) -> dict[str, str]:
    """Settings for an app under test: state and secret files in a scratch folder, not /var/lib
    or /run of the host."""
    scratch = Path(tempfile.gettempdir()) / f"parallax-unit-{os.getpid()}"
    return {
        "PARALLAX_STATE_DIR": str(scratch / "state"),
        "PARALLAX_SECRETS_DIR": str(scratch / "secrets"),
        # The apps under test are called as http://test (httpx's base_url in these tests).
        "PARALLAX_ALLOWED_HOSTS": "test",
        **extra,
    }
