"""What the runtime asks of a container platform: one core protocol and a few capabilities.

``Backend`` holds the verbs every platform must offer (containers, networks, volumes, images,
processes, logs, usage and events), with the types they speak. A platform may offer more
through the capabilities in backends/capabilities.py, which one ``Deployment`` bundles, all made
from one connection to the platform.

Everything here speaks the project's own types, so that a Swarm or Kubernetes deployment can sit
behind it without any change above it. Failures surface as parallax_docker.errors classes.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class MountSpec:
    # "secret": a file the platform's own secret store provides (``source`` names it); only a
    # SecretDelivery that keeps secrets in the platform makes these.
    kind: Literal["bind", "volume", "tmpfs", "secret"]
    target: str
    source: str = ""
    read_only: bool = False
    # tmpfs only
    size_bytes: int = 0
    mode: int = 0o1777
    # volume only: labels applied when the backend creates the volume
    volume_labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HealthProbe:
    """A readiness/health command; argv run inside the container."""

    argv: tuple[str, ...]
    interval_s: float
    timeout_s: float
    retries: int
    start_period_s: float


@dataclass(frozen=True)
class ContainerSpec:
    """Desired state of one container, with every security decision already made."""

    name: str
    image: str
    labels: Mapping[str, str]
    network: str
    aliases: tuple[str, ...]
    memory_bytes: int
    nano_cpus: int
    pids_limit: int
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str | None = None
    user: str | None = None
    mounts: tuple[MountSpec, ...] = ()
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    read_only_rootfs: bool = True
    cap_drop_all: bool = True
    no_new_privileges: bool = True
    init: bool = True
    log_max_size: str = "10m"
    log_max_files: int = 3
    runtime: str | None = None
    healthcheck: HealthProbe | None = None
    # False: the image's own HEALTHCHECK is switched off (its agent beats a heartbeat instead).
    image_healthcheck: bool = True
    stop_signal: str = "SIGTERM"
    stop_timeout_s: int = 10


@dataclass(frozen=True)
class ContainerState:
    """Observed state of one container, as the engine reports it."""

    id: str
    name: str
    image: str
    labels: Mapping[str, str]
    status: str  # created, running, paused, restarting, removing, exited, dead
    running: bool
    exit_code: int | None
    oom_killed: bool
    health: str | None  # starting, healthy, unhealthy or None without a healthcheck
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    error: str | None
    networks: tuple[str, ...]
    pid: int | None = None
    # The container's IP addresses on its networks (the model gateway binds tokens to them).
    addresses: tuple[str, ...] = ()
    restart_count: int = 0
    memory_bytes: int = 0
    nano_cpus: int = 0
    pids_limit: int = 0
    # The machine it runs on, on a platform of several (None on one engine).
    node: str | None = None
    # The platform lost that machine (down, or drained) while the container was meant to run:
    # it is gone, not exited.
    lost: bool = False


@dataclass(frozen=True)
class ImageInfo:
    id: str
    tags: tuple[str, ...]
    user: str | None
    healthcheck: tuple[str, ...] | None
    labels: Mapping[str, str]
    size: int
    created: str | None
    # The image's own ENTRYPOINT and CMD: needed to wrap them when the service must set its own
    # entrypoint (custom images that do not load the secret env file themselves).
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    # The HEALTHCHECK's timing (0: the engine's default), to repeat it in a changed check.
    health_interval_s: float = 0.0
    health_timeout_s: float = 0.0
    health_retries: int = 0
    health_start_period_s: float = 0.0


@dataclass(frozen=True)
class NetworkInfo:
    name: str
    labels: Mapping[str, str]
    containers: int
    created: str | None
    internal: bool = False


@dataclass(frozen=True)
class VolumeInfo:
    name: str
    labels: Mapping[str, str]
    created: str | None


@dataclass(frozen=True)
class NodeInfo:
    """One machine of a platform of several, as its manager sees it."""

    id: str
    name: str
    role: str  # manager or worker
    state: str  # ready, down, unknown, disconnected
    availability: str  # active, pause, drain
    address: str
    memory_bytes: int
    cpus: float
    leader: bool = False

    @property
    def schedulable(self) -> bool:
        """New agents may be placed here."""
        return self.state == "ready" and self.availability == "active"


@dataclass(frozen=True)
class EngineInfo:
    version: str
    api_version: str
    memory_bytes: int
    cpus: int
    cgroup_version: str
    warnings: tuple[str, ...] = ()
    # Container runtimes the engine has registered (runc, runsc, ...); empty when unknown.
    runtimes: tuple[str, ...] = ()
    # What kind of platform answers ("docker": one engine) and, for a cluster, its machines
    # (memory and CPUs above are then those of the schedulable ones together).
    platform: str = "docker"
    nodes: tuple[NodeInfo, ...] = ()
    # Whether containers keep running while the engine itself restarts.
    live_restore: bool = False


@dataclass(frozen=True)
class ContainerEvent:
    """A container event from the engine's stream (action: start, die, oom, destroy, ...)."""

    action: str
    container_id: str
    labels: Mapping[str, str]
    time_ns: int
    exit_code: int | None = None


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: bytes


@dataclass(frozen=True)
class ExecSpec:
    """One process to run in a running container (``docker exec``): an argv, never a shell line.

    ``stdin`` is written to the process and then closed (None: no stdin at all); ``env`` adds to
    the container's environment; ``user`` and ``workdir`` default to the container's.
    """

    argv: tuple[str, ...]
    stdin: bytes | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    user: str | None = None
    workdir: str | None = None


@dataclass(frozen=True)
class ExecOutput:
    """A chunk of an exec'd process's output, as it arrived."""

    stream: Literal["stdout", "stderr"]
    data: bytes


@dataclass(frozen=True)
class ExecExit:
    """The last item of an exec stream: the process's exit code (-1 when unknown)."""

    exit_code: int


class TerminalSession(Protocol):
    """An interactive process on a pseudo-terminal inside a container."""

    async def read(self) -> bytes:
        """The next bytes the terminal printed; b"" once the process has ended."""
        ...

    async def write(self, data: bytes) -> None: ...

    async def resize(self, cols: int, rows: int) -> None: ...

    async def exit_code(self) -> int | None:
        """The process's exit code once it has ended, else None."""
        ...

    async def close(self) -> None:
        """Hang up (the process sees its terminal close)."""
        ...


@dataclass(frozen=True)
class StatsSample:
    cpu_total_ns: int
    system_cpu_ns: int
    online_cpus: int
    memory_usage: int
    memory_limit: int
    pids: int
    rx_bytes: int
    tx_bytes: int
    raw: Mapping[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    """The core verbs: what every platform the runtime runs on must do."""

    async def ping(self) -> EngineInfo: ...

    def available_memory(self) -> int | None:
        """Bytes of memory the platform's host could still give (Linux: MemAvailable); None
        when it cannot tell. Cheap: admission reads it on every spawn."""
        ...

    # -- networks ---------------------------------------------------------------------------

    async def ensure_network(
        self, name: str, labels: Mapping[str, str], internal: bool = False
    ) -> dict[str, str]:
        """Create network ``name`` with ``labels`` unless it exists; return its labels."""
        ...

    async def get_network(self, name: str) -> NetworkInfo | None: ...

    async def remove_network(self, name: str) -> None: ...

    async def list_networks(self, labels: Mapping[str, str]) -> builtins.list[NetworkInfo]:
        """Networks carrying all ``labels``, with how many containers are attached."""
        ...

    # -- volumes ----------------------------------------------------------------------------

    async def get_volume(self, name: str) -> VolumeInfo | None: ...

    async def list_volumes(
        self, labels: Mapping[str, str], unused_only: bool = False
    ) -> builtins.list[VolumeInfo]:
        """Volumes carrying all ``labels``; with ``unused_only``, those no container uses."""
        ...

    async def remove_volume(self, name: str) -> None:
        """Remove a volume (none: nothing happens); VolumeInUseError while a container has it."""
        ...

    # -- images -----------------------------------------------------------------------------

    async def get_image(self, ref: str) -> ImageInfo | None: ...

    # -- containers -------------------------------------------------------------------------

    async def create(self, spec: ContainerSpec) -> str:
        """Create (not start) the container; its id.

        Fail closed: refused (and removed) with InsecureSpawnError unless the platform applied
        every limit and security setting of ``spec``, and with ValidationError when the program
        ``spec.entrypoint`` names is not in the image.
        """
        ...

    async def start(self, container_id: str) -> None: ...

    async def stop(self, container_id: str, timeout_s: float) -> None:
        """The stop signal, then SIGKILL after ``timeout_s``; nothing when already stopped."""
        ...

    async def kill(self, container_id: str, signal: str = "SIGKILL") -> None: ...

    async def restart(self, container_id: str, timeout_s: float) -> None: ...

    async def remove(self, container_id: str) -> None:
        """Remove the container, running or not (gone already: nothing happens)."""
        ...

    async def get(self, container_id: str) -> ContainerState | None: ...

    async def read_file(self, container_id: str, path: str, max_bytes: int) -> bytes | None:
        """A small regular file of the container's filesystem (created or running); None when
        there is none at ``path`` or it is larger than ``max_bytes``."""
        ...

    async def list(self, labels: Mapping[str, str]) -> builtins.list[ContainerState]: ...

    # -- processes in a container -----------------------------------------------------------

    async def exec(self, container_id: str, spec: ExecSpec, timeout_s: float) -> ExecResult:
        """Run ``spec`` to its end (at most ``timeout_s``); its exit code and first output."""
        ...

    def stream_exec(
        self, container_id: str, spec: ExecSpec
    ) -> AsyncIterator[ExecOutput | ExecExit]:
        """Run ``spec`` and yield its output as it comes, then one ExecExit.

        Closing the iterator early hangs up; the process itself may go on running (stop it
        from inside the container). No thread is held while the process runs.
        """
        ...

    # -- observation ------------------------------------------------------------------------

    async def logs(
        self, container_id: str, *, tail: int | None, since: float | None, timestamps: bool
    ) -> builtins.list[str]: ...

    def stream_logs(
        self, container_id: str, *, tail: int | None, since: float | None, timestamps: bool
    ) -> AsyncIterator[str]: ...

    async def usage(self, state: ContainerState) -> StatsSample:
        """The container's usage counters, the cheapest way the platform can read them."""
        ...

    def watch_events(
        self, labels: Mapping[str, str], since_ns: int | None = None
    ) -> AsyncIterator[ContainerEvent]: ...
