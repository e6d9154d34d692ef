"""The optional capabilities a platform may offer beside the core ``Backend`` (backends/base.py),
and the ``Deployment`` that bundles them.

``SecretDelivery`` says how secret env values reach an agent (every platform has one);
``Terminals`` (interactive TTYs), ``WarmStart`` (containers started ahead of time and turned into
agents on demand, for the warm pool), ``Heartbeats`` (an agent's liveness read without running
anything in it), ``ImageBuilding`` (the image builder), ``Files`` (files in and out of an agent's
workspace and home) and ``Ports`` (reaching a port an agent listens on) may be offered or
declined (None).
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from parallax_docker.backends.base import (
    Backend,
    ContainerSpec,
    ExecSpec,
    ImageInfo,
    MountSpec,
    TerminalSession,
)


@dataclass(frozen=True)
class SecretMounts:
    """How one agent receives its secret env: mounts, and the wrapped command when needed."""

    mounts: tuple[MountSpec, ...]
    entrypoint: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None


class SecretDelivery(Protocol):
    """How secret env values reach an agent without entering its spec or the platform's API.

    ``key`` names one agent's secrets (its id); values are never logged or returned.
    """

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
        """Store the agent's values and say how to mount them; None when ``env`` is empty."""
        ...

    def remove(self, key: str) -> None: ...

    def prune(self, keep: Iterable[str]) -> builtins.list[str]:
        """Remove the secrets of every key not in ``keep`` (past a grace period); the keys."""
        ...


# The project images' entrypoint (images/entrypoint/): it loads the secret env file and, when
# given a channel, beats a heartbeat; an image with it says the latter with HEARTBEAT_LABEL
# ("1" is the only protocol so far).
PROJECT_ENTRYPOINT = "/usr/local/bin/parallax-entrypoint"
HEARTBEAT_LABEL = "parallax.heartbeat"


def beats(image: ImageInfo) -> bool:
    """True for an image whose entrypoint is the project's, and one that beats."""
    return (
        image.labels.get(HEARTBEAT_LABEL) == "1"
        and image.entrypoint is not None
        and image.entrypoint[:1] == (PROJECT_ENTRYPOINT,)
    )


@dataclass(frozen=True)
class Beat:
    """What an agent's heartbeat channel shows."""

    # Wall-clock time of the last beat (0: none since the channel was made).
    at: float
    # The last line the agent wrote since the previous read: "ok", or why it is not well.
    report: str | None


class Heartbeats(Protocol):
    """An agent's heartbeat, read without running anything in its container.

    ``key`` names one agent (its id); the channel lives and goes with the key's other per-agent
    files (``SecretDelivery.remove`` and ``prune`` take it along).
    """

    def attach(self, key: str) -> tuple[MountSpec, ...]:
        """Make ``key``'s channel (if need be) and say how to mount it into the agent."""
        ...

    def read(self, key: str) -> Beat | None:
        """The channel's last beat, and what was written since the last read; None when the
        key has no channel. Cheap (a stat, and a read when something arrived)."""
        ...


class Terminals(Protocol):
    async def open_terminal(
        self, container_id: str, spec: ExecSpec, cols: int, rows: int
    ) -> TerminalSession:
        """Start ``spec`` on a new pseudo-terminal of ``cols`` x ``rows``."""
        ...


@dataclass(frozen=True)
class WarmContainer:
    """A container started ahead of time whose agent process waits for a claim."""

    container_id: str
    slot: str
    # The secrets key its (empty) secret files live under until a claim.
    key: str
    memory_bytes: int
    nano_cpus: int


@dataclass(frozen=True)
class WarmClaim:
    """What a warm container becomes: one agent's name, network identity, limits and env."""

    key: str
    name: str
    network: str
    aliases: tuple[str, ...]
    memory_bytes: int
    nano_cpus: int
    env: Mapping[str, str] = field(repr=False)


class WarmStart(Protocol):
    """Containers started ahead of time and turned into agents on demand (the warm pool)."""

    async def prepare(
        self, spec: ContainerSpec, image: ImageInfo, probe: tuple[str, ...] | None, slot: str
    ) -> WarmContainer:
        """Create and start ``spec`` with its agent process held until a claim."""
        ...

    async def claim(self, warm: WarmContainer, claim: WarmClaim, timeout_s: float) -> bool:
        """Make ``warm`` the agent ``claim`` describes and let its process start.

        True once the container announced that its readiness check passed; False when it did
        not within ``timeout_s`` (the caller probes readiness itself). On failure the container
        is left for the caller to discard.
        """
        ...

    async def discard(self, container_id: str, slot: str, key: str | None = None) -> None:
        """Remove a warm container (claimed or not: then ``key`` is the claim's) with everything
        kept for it."""
        ...


class ImageBuilding(Protocol):
    """What the image builder needs from the platform (images/)."""

    async def get_image(self, ref: str) -> ImageInfo | None:
        """The image called ``ref``, or None when the platform has no such image."""
        ...

    def stream_build(
        self,
        context: bytes,
        *,
        dockerfile: str,
        tag: str,
        build_args: Mapping[str, str],
        labels: Mapping[str, str],
        no_cache: bool,
        network: str | None = None,
    ) -> AsyncIterator[BuildEvent]:
        """Build from a gzipped tar ``context``; raises a project error when the build fails.

        ``network`` is the build steps' network mode (None: the platform's default).
        """
        ...

    def stream_pull(self, ref: str) -> AsyncIterator[str]:
        """Pull ``ref``, yielding progress lines; raises a project error when it cannot."""
        ...

    async def import_rootfs(
        self, chunks: AsyncIterator[bytes], ref: str, changes: tuple[str, ...]
    ) -> str:
        """Import a root filesystem tar as image ``ref`` (``docker import``); returns its id."""
        ...


@dataclass(frozen=True)
class BuildStep:
    """The builder started instruction ``index`` of ``total`` ("Step 3/12 : RUN ...")."""

    index: int
    total: int
    instruction: str


@dataclass(frozen=True)
class BuildOutput:
    """One line the build printed (command output, cache notes)."""

    line: str


@dataclass(frozen=True)
class BuildDone:
    """The build finished and produced ``image_id``."""

    image_id: str


BuildEvent = BuildStep | BuildOutput | BuildDone


@dataclass(frozen=True)
class FileEntry:
    """One entry of a folder; ``target`` is where a symbolic link points (as written)."""

    name: str
    kind: Literal["file", "dir", "symlink", "other"]
    size: int
    mode: int
    mtime: float
    target: str | None = None


@dataclass(frozen=True)
class DirListing:
    """A folder's entries; ``path`` is where the folder really is (links resolved)."""

    path: str
    entries: tuple[FileEntry, ...]
    truncated: bool


@dataclass(frozen=True)
class FileStream:
    """What a read found: a file's bytes, or a tar of a folder's contents, as they come.

    ``size`` is the file's size, or the room the folder takes (the tar is about as large).
    Close ``chunks`` (``aclose``) to stop early.
    """

    kind: Literal["file", "dir"]
    size: int
    chunks: AsyncIterator[bytes]


class Files(Protocol):
    """Files in an agent, confined to its workspace (/workspace) and home (``~``).

    Paths are absolute and lexically clean (no ``..``, ``.`` or empty parts), or start with
    ``~`` for the home. The platform resolves them where the agent runs, links and all, and
    refuses (PathForbiddenError) whatever really lies outside; it acts as the agent's own user.
    Writes are two-phase: ``stage`` puts the bytes near their place (in the nearest folder that
    exists), ``commit`` makes the folder and moves them in, ``discard`` drops them, so that a
    failed or refused upload changes nothing.
    """

    async def open_read(self, container_id: str, path: str, max_bytes: int) -> FileStream:
        """A regular file, or a folder as a tar of its contents; DownloadTooLargeError above
        ``max_bytes``, FileTypeForbiddenError for devices, FIFOs and sockets."""
        ...

    async def list_dir(self, container_id: str, path: str, limit: int) -> DirListing: ...

    async def stage(
        self,
        container_id: str,
        directory: str,
        stage: str,
        chunks: AsyncIterator[bytes],
        *,
        name: str | None = None,
    ) -> None:
        """Write ``chunks`` into the folder ``stage`` near ``directory``: as the file ``name``,
        or (None) unpacked from a tar (whose members the caller checks as they pass)."""
        ...

    async def commit(self, container_id: str, directory: str, stage: str) -> None:
        """Make ``directory`` and move what ``stage`` holds into it: folders merged, files
        replaced; PathConflictError (and nothing moved) when a file would replace a folder."""
        ...

    async def discard(self, container_id: str, directory: str, stage: str) -> None: ...

    async def remove(self, container_id: str, path: str, recursive: bool) -> None:
        """Remove the entry itself (a link, not what it leads to)."""
        ...


class Ports(Protocol):
    """Reaching a TCP port an agent listens on (previews of the apps it runs)."""

    async def address(self, container_id: str, port: int) -> tuple[str, int] | None:
        """Where the service connects to reach ``port``; None when the agent has no address
        the service can reach (no network)."""
        ...


class Deployment(Protocol):
    """One platform the runtime runs on: the core verbs and the capabilities it offers, all
    over one connection (closed by ``close``)."""

    @property
    def backend(self) -> Backend: ...

    @property
    def secrets(self) -> SecretDelivery: ...

    @property
    def terminals(self) -> Terminals | None: ...

    @property
    def warm_start(self) -> WarmStart | None: ...

    @property
    def images(self) -> ImageBuilding | None: ...

    @property
    def files(self) -> Files | None: ...

    @property
    def ports(self) -> Ports | None: ...

    @property
    def heartbeats(self) -> Heartbeats | None: ...

    async def close(self) -> None: ...
