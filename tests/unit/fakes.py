"""A fake platform for unit tests: no Docker engine, every call recorded.

``FakeBackend`` keeps containers in memory and moves them as an engine would (create → created,
start → running, stop → exited 0, kill → exited 137, remove → gone). Tests shape it through its
attributes: ``fail`` makes a verb raise, ``hold`` makes a verb wait for an event (to stop an
operation half-way), ``exec_results`` and ``turn_outputs`` script what processes in containers
answer. ``as_deployment`` hands the fakes to the runtime typed as the protocols, so mypy checks
that they conform.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from parallax_docker.backends.base import (
    Backend,
    ContainerEvent,
    ContainerSpec,
    ContainerState,
    EngineInfo,
    ExecExit,
    ExecOutput,
    ExecResult,
    ExecSpec,
    ImageInfo,
    MountSpec,
    NetworkInfo,
    StatsSample,
    TerminalSession,
    VolumeInfo,
)
from parallax_docker.backends.capabilities import (
    Beat,
    Deployment,
    Files,
    Heartbeats,
    ImageBuilding,
    Ports,
    SecretDelivery,
    SecretMounts,
    Terminals,
    WarmClaim,
    WarmContainer,
    WarmStart,
)

GIB = 1024**3


def engine_info(memory_bytes: int = 8 * GIB, cpus: int = 4) -> EngineInfo:
    return EngineInfo(
        version="20.10.24",
        api_version="1.41",
        memory_bytes=memory_bytes,
        cpus=cpus,
        cgroup_version="2",
    )


def image(
    user: str | None = "agent", healthcheck: tuple[str, ...] | None = None, *, beats: bool = False
) -> ImageInfo:
    return ImageInfo(
        id="sha256:" + "0" * 64,
        tags=("parallax/agent-claude:latest",),
        user=user,
        healthcheck=healthcheck,
        # Shaped like the project's images, whose entrypoint loads the secret env file (and,
        # with ``beats``, beats a heartbeat).
        labels={"parallax.image.type": "claude"} | ({"parallax.heartbeat": "1"} if beats else {}),
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


def created_state(container_id: str, labels: Mapping[str, str], name: str) -> ContainerState:
    return replace(
        running_state(container_id, labels),
        name=name,
        status="created",
        running=False,
        started_at=None,
    )


def exited_state(state: ContainerState, exit_code: int) -> ContainerState:
    return replace(
        state,
        status="exited",
        running=False,
        exit_code=exit_code,
        finished_at="2026-01-01T00:00:09Z",
        pid=None,
    )


class FakeBackend:
    """An in-memory engine with the core verbs."""

    def __init__(self) -> None:
        self.info = engine_info()
        # What the host could still give (None: it cannot tell).
        self.memory_available: int | None = 6 * GIB
        self.images: dict[str, ImageInfo] = {}
        self.containers: dict[str, ContainerState] = {}
        self.networks: dict[str, dict[str, str]] = {}
        self.volumes: dict[str, VolumeInfo] = {}
        self._created = 0
        self.calls: list[tuple[str, Any]] = []
        # verb -> the exception it raises (once per entry in the list, or always for one).
        self.fail: dict[str, BaseException] = {}
        # verb -> the exception its next call raises (then it works again).
        self.fail_once: dict[str, BaseException] = {}
        # verb -> an event the verb waits for before it acts.
        self.hold: dict[str, asyncio.Event] = {}
        # argv[0:3] joined by spaces -> what an exec of it answers.
        self.exec_results: dict[str, ExecResult] = {}
        # Outputs of the next turns (stream_exec), in order; each a list of items.
        self.turn_outputs: list[list[ExecOutput | ExecExit]] = []
        # Set while a turn's stream is open; a turn waits on it when ``hang_turns``.
        self.hang_turns = False
        # A kill exec (the turn wrapper's kill script) ends the hung turns, as on an engine.
        self._killed = asyncio.Event()
        self.events: asyncio.Queue[ContainerEvent] = asyncio.Queue()
        # The images' account files, as read_file finds them in a created container.
        self.files: dict[str, bytes] = {
            "/etc/passwd": b"root:x:0:0::/root:/bin/sh\nagent:x:1000:1000::/home/agent:/bin/sh\n",
            "/etc/group": b"root:x:0:\nagent:x:1000:\n",
        }

    def called(self, name: str) -> list[Any]:
        return [args for call, args in self.calls if call == name]

    async def _step(self, verb: str, args: Any = None) -> None:
        self.calls.append((verb, args))
        held = self.hold.get(verb)
        if held is not None:
            await held.wait()
        error = self.fail.get(verb) or self.fail_once.pop(verb, None)
        if error is not None:
            raise error

    # -- engine, networks, volumes, images ---------------------------------------------------

    async def ping(self) -> EngineInfo:
        await self._step("ping")
        return self.info

    def available_memory(self) -> int | None:
        return self.memory_available

    async def ensure_network(
        self, name: str, labels: Mapping[str, str], internal: bool = False
    ) -> dict[str, str]:
        await self._step("ensure_network", (name, dict(labels), internal))
        return self.networks.setdefault(name, dict(labels))

    async def get_network(self, name: str) -> NetworkInfo | None:
        await self._step("get_network", name)
        labels = self.networks.get(name)
        return None if labels is None else NetworkInfo(name, labels, 0, None)

    async def remove_network(self, name: str) -> None:
        await self._step("remove_network", name)
        self.networks.pop(name, None)

    async def list_networks(self, labels: Mapping[str, str]) -> builtins.list[NetworkInfo]:
        await self._step("list_networks", dict(labels))
        return [
            NetworkInfo(name, own, 0, None)
            for name, own in self.networks.items()
            if all(own.get(k) == v for k, v in labels.items())
        ]

    async def get_volume(self, name: str) -> VolumeInfo | None:
        await self._step("get_volume", name)
        return self.volumes.get(name)

    async def list_volumes(
        self, labels: Mapping[str, str], unused_only: bool = False
    ) -> builtins.list[VolumeInfo]:
        await self._step("list_volumes", (dict(labels), unused_only))
        return [
            v for v in self.volumes.values() if all(v.labels.get(k) == w for k, w in labels.items())
        ]

    async def remove_volume(self, name: str) -> None:
        await self._step("remove_volume", name)
        self.volumes.pop(name, None)

    async def get_image(self, ref: str) -> ImageInfo | None:
        await self._step("get_image", ref)
        return self.images.get(ref)

    # -- containers -------------------------------------------------------------------------

    async def create(self, spec: ContainerSpec) -> str:
        await self._step("create", spec)
        self._created += 1
        container_id = f"c{self._created:063d}"
        self.containers[container_id] = replace(
            created_state(container_id, spec.labels, spec.name),
            memory_bytes=spec.memory_bytes,
            nano_cpus=spec.nano_cpus,
            pids_limit=spec.pids_limit,
        )
        return container_id

    def _set(self, container_id: str, **changes: Any) -> None:
        state = self.containers.get(container_id)
        if state is not None:
            self.containers[container_id] = replace(state, **changes)

    async def start(self, container_id: str) -> None:
        await self._step("start", container_id)
        self._set(
            container_id,
            status="running",
            running=True,
            exit_code=None,
            started_at="2026-01-01T00:00:01Z",
            finished_at=None,
        )

    async def stop(self, container_id: str, timeout_s: float) -> None:
        await self._step("stop", container_id)
        state = self.containers.get(container_id)
        if state is not None and state.running:
            self.containers[container_id] = exited_state(state, 0)

    async def kill(self, container_id: str, signal: str = "SIGKILL") -> None:
        await self._step("kill", container_id)
        state = self.containers.get(container_id)
        if state is not None and state.running:
            self.containers[container_id] = exited_state(state, 137)

    async def restart(self, container_id: str, timeout_s: float) -> None:
        await self._step("restart", container_id)
        self._set(container_id, status="running", running=True, exit_code=None)

    async def remove(self, container_id: str) -> None:
        await self._step("remove", container_id)
        self.containers.pop(container_id, None)

    async def get(self, container_id: str) -> ContainerState | None:
        await self._step("get", container_id)
        return self.containers.get(container_id)

    async def read_file(self, container_id: str, path: str, max_bytes: int) -> bytes | None:
        await self._step("read_file", (container_id, path))
        return self.files.get(path)

    async def list(self, labels: Mapping[str, str]) -> builtins.list[ContainerState]:
        await self._step("list", dict(labels))
        return [
            state
            for state in self.containers.values()
            if all(state.labels.get(k) == v for k, v in labels.items())
        ]

    # -- processes --------------------------------------------------------------------------

    async def exec(self, container_id: str, spec: ExecSpec, timeout_s: float) -> ExecResult:
        await self._step("exec", (container_id, spec.argv))
        if "parallax-kill" in spec.argv:
            self._killed.set()
        key = " ".join(spec.argv[:3])
        for prefix, result in self.exec_results.items():
            if key.startswith(prefix):
                return result
        return ExecResult(exit_code=0, output=b"")

    async def stream_exec(
        self, container_id: str, spec: ExecSpec
    ) -> AsyncIterator[ExecOutput | ExecExit]:
        await self._step("stream_exec", (container_id, spec))
        if spec.argv[3:4] == ("parallax-workspace",) or "parallax-changes" in spec.argv:
            # The workspace's snapshot at spawn (runtime/workspace.py), an empty workspace, or
            # the listing of a turn's changes (the scripted outputs are the turns').
            yield ExecExit(0)
            return
        items = self.turn_outputs.pop(0) if self.turn_outputs else [ExecExit(0)]
        for item in items:
            yield item
            await asyncio.sleep(0)
        if self.hang_turns:
            self._killed.clear()
            await self._killed.wait()
            yield ExecExit(143)

    # -- observation ------------------------------------------------------------------------

    async def logs(
        self, container_id: str, *, tail: int | None, since: float | None, timestamps: bool
    ) -> builtins.list[str]:
        await self._step("logs", container_id)
        return ["hello"]

    async def stream_logs(
        self, container_id: str, *, tail: int | None, since: float | None, timestamps: bool
    ) -> AsyncIterator[str]:
        await self._step("stream_logs", container_id)
        yield "hello"

    async def usage(self, state: ContainerState) -> StatsSample:
        await self._step("usage", state.id)
        return StatsSample(
            cpu_total_ns=0,
            system_cpu_ns=0,
            online_cpus=1,
            memory_usage=1024,
            memory_limit=0,
            pids=1,
            rx_bytes=0,
            tx_bytes=0,
        )

    async def watch_events(
        self, labels: Mapping[str, str], since_ns: int | None = None
    ) -> AsyncIterator[ContainerEvent]:
        self.calls.append(("watch_events", dict(labels)))
        while True:
            yield await self.events.get()


@dataclass
class FakeSecrets:
    """Where secret env would go: remembered per key, never written anywhere."""

    delivered: dict[str, dict[str, str]] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    pruned_keeping: list[set[str]] = field(default_factory=list)

    def deliver(
        self,
        key: str,
        env: Mapping[str, str],
        image: ImageInfo,
        *,
        image_ref: str,
        command: tuple[str, ...] | None,
        uid: int | None,
    ) -> SecretMounts | None:
        if not env:
            return None
        self.delivered[key] = dict(env)
        return SecretMounts(mounts=())

    def remove(self, key: str) -> None:
        self.removed.append(key)
        self.delivered.pop(key, None)

    def prune(self, keep: Iterable[str]) -> builtins.list[str]:
        kept = set(keep)
        self.pruned_keeping.append(kept)
        gone = [key for key in self.delivered if key not in kept]
        for key in gone:
            del self.delivered[key]
        return gone


class FakeWarmStart:
    """Warm containers on the fake engine: prepared running, claimed by a rename."""

    def __init__(self, backend: FakeBackend, *, announce: bool = True) -> None:
        self.backend = backend
        self.announce = announce
        self.claimed: list[tuple[str, WarmClaim]] = []
        self.discarded: list[str] = []
        self.claim_error: BaseException | None = None

    async def prepare(
        self, spec: ContainerSpec, image: ImageInfo, probe: tuple[str, ...] | None, slot: str
    ) -> WarmContainer:
        container_id = await self.backend.create(spec)
        await self.backend.start(container_id)
        return WarmContainer(
            container_id=container_id,
            slot=slot,
            key=f"pool-{slot}",
            memory_bytes=spec.memory_bytes,
            nano_cpus=spec.nano_cpus,
        )

    async def claim(self, warm: WarmContainer, claim: WarmClaim, timeout_s: float) -> bool:
        self.claimed.append((warm.container_id, claim))
        if self.claim_error is not None:
            raise self.claim_error
        self.backend._set(
            warm.container_id,
            name=claim.name,
            memory_bytes=claim.memory_bytes,
            nano_cpus=claim.nano_cpus,
        )
        return self.announce

    async def discard(self, container_id: str, slot: str, key: str | None = None) -> None:
        self.discarded.append(container_id)
        await self.backend.remove(container_id)


@dataclass
class FakeHeartbeats:
    """Heartbeat channels as the tests write them: ``beat`` is an agent beating. With ``healthy``
    a new channel starts with an "ok" (an agent that beats as soon as it starts)."""

    beats: dict[str, Beat] = field(default_factory=dict)
    attached: list[str] = field(default_factory=list)
    healthy: bool = True

    def attach(self, key: str) -> tuple[MountSpec, ...]:
        self.attached.append(key)
        if self.healthy:
            self.beat(key)
        else:
            self.beats.setdefault(key, Beat(at=0.0, report=None))
        return (MountSpec("bind", "/run/parallax/heartbeat", f"/fake/{key}/heartbeat"),)

    def beat(self, key: str, report: str = "ok", at: float | None = None) -> None:
        self.beats[key] = Beat(at=time.time() if at is None else at, report=report)

    def read(self, key: str) -> Beat | None:
        beat = self.beats.get(key)
        if beat is not None:
            # Read once, as from a FIFO; the time of the last beat stays.
            self.beats[key] = Beat(at=beat.at, report=None)
        return beat


class FakeTerminal:
    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    async def read(self) -> bytes:
        return b""

    async def write(self, data: bytes) -> None:
        self.written.extend(data)

    async def resize(self, cols: int, rows: int) -> None:
        return None

    async def exit_code(self) -> int | None:
        return 0

    async def close(self) -> None:
        self.closed = True


class FakeTerminals:
    def __init__(self) -> None:
        self.opened: list[tuple[str, ExecSpec]] = []

    async def open_terminal(
        self, container_id: str, spec: ExecSpec, cols: int, rows: int
    ) -> TerminalSession:
        self.opened.append((container_id, spec))
        return FakeTerminal()


class FakeDeployment:
    def __init__(self, *, warm: bool = True) -> None:
        self.fake = FakeBackend()
        self.fake_secrets = FakeSecrets()
        self.fake_warm = FakeWarmStart(self.fake)
        self.fake_terminals = FakeTerminals()
        self.fake_heartbeats = FakeHeartbeats()
        self._warm = warm
        self.closed = False

    @property
    def backend(self) -> Backend:
        return self.fake

    @property
    def secrets(self) -> SecretDelivery:
        return self.fake_secrets

    @property
    def terminals(self) -> Terminals | None:
        return self.fake_terminals

    @property
    def warm_start(self) -> WarmStart | None:
        return self.fake_warm if self._warm else None

    @property
    def images(self) -> ImageBuilding | None:
        return None

    @property
    def files(self) -> Files | None:
        return None

    @property
    def ports(self) -> Ports | None:
        return None

    @property
    def heartbeats(self) -> Heartbeats | None:
        return self.fake_heartbeats

    async def close(self) -> None:
        self.closed = True


def as_deployment(fake: FakeDeployment) -> Deployment:
    """The fake, typed as the protocol (mypy checks that it conforms)."""
    return fake


def as_backend(fake: FakeBackend) -> Backend:
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
