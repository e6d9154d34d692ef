"""The hardening policy: what a request may ask for, and what every agent always gets.

Pure functions: they read the host's filesystem metadata (to resolve paths) but never talk to
the engine. The service turns a request into a ContainerSpec only through these.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from parallax_docker.backends.base import ContainerSpec, MountSpec
from parallax_docker.errors import (
    NetworkForbiddenError,
    RuntimeForbiddenError,
    RuntimeUnavailableError,
    ValidationError,
    VolumeForbiddenError,
)
from parallax_docker.host_paths import check_host_path, within
from parallax_docker.resources import NAME_RE, VolumeRequest
from parallax_docker.run_as import RunAs
from parallax_docker.volume_owner import check_volume_name

# Container paths a mount may not cover: the kernel's views and the runtime's own mounts.
RESERVED_TARGETS: tuple[str, ...] = ("/", "/proc", "/sys", "/dev", "/run/parallax", "/tmp")  # noqa: S108

AGENT_HOME = "/home/agent"
AGENT_WORKSPACE = "/workspace"
AGENT_RUN_DIR = "/run/parallax"

# Network names a request may not use: they share the host's or another container's stack,
# or put the agent next to containers that are not agents.
FORBIDDEN_NETWORKS = frozenset({"host", "bridge", "default"})
NETWORK_NONE = "none"
NETWORK_INTERNAL = "internal"


@dataclass(frozen=True)
class NetworkChoice:
    """Where an agent is attached: ``mode`` none, or a named network (maybe internal)."""

    name: str
    internal: bool = False
    managed: bool = True

    @property
    def is_none(self) -> bool:
        return self.name == NETWORK_NONE


def choose_network(requested: str | None, default_network: str) -> NetworkChoice:
    if requested is None or requested == default_network:
        return NetworkChoice(default_network)
    if requested == NETWORK_NONE:
        return NetworkChoice(NETWORK_NONE, managed=False)
    internal_name = f"{default_network}-internal"
    # The internal network's own name means the internal network: were it made as a plain
    # named network first, later 'internal' agents would join a network with a route out.
    if requested in (NETWORK_INTERNAL, internal_name):
        return NetworkChoice(internal_name, internal=True)
    lowered = requested.lower()
    if lowered in FORBIDDEN_NETWORKS or ":" in requested:
        raise NetworkForbiddenError(f"network {requested!r} is not allowed for agents")
    if not NAME_RE.match(requested):
        raise ValidationError(f"network {requested[:80]!r} is not a valid network name")
    return NetworkChoice(requested)


def check_target(target: str, taken: set[str]) -> str:
    if "\\" in target or any(part == ".." for part in PurePosixPath(target).parts):
        raise VolumeForbiddenError(f"container path {target[:200]!r} may not contain '..'")
    normal = posixpath.normpath("/" + target.lstrip("/"))
    for reserved in RESERVED_TARGETS:
        if normal == reserved or (reserved != "/" and within(normal, reserved)):
            raise VolumeForbiddenError(
                f"container path {target[:200]!r} would cover a protected path ({reserved})"
            )
    if normal in taken:
        raise ValidationError(f"container path {target[:200]!r} is mounted twice")
    taken.add(normal)
    return normal


def volume_mounts(
    requests: Iterable[VolumeRequest],
    *,
    docker_socket: str,
    allowed_roots: Iterable[os.PathLike[str] | str],
    volume_labels: dict[str, str],
    protected: Iterable[os.PathLike[str] | str] = (),
) -> list[MountSpec]:
    """Turn parsed ``volumes`` entries into mounts, refusing every way out to the host."""
    roots = list(allowed_roots)
    own = list(protected)
    taken: set[str] = set()
    mounts: list[MountSpec] = []
    for request in requests:
        target = check_target(request.target, taken)
        if request.is_bind:
            source = check_host_path(
                request.source,
                docker_socket=docker_socket,
                read_only=request.read_only,
                allowed_roots=roots,
                protected=own,
            )
            mounts.append(MountSpec("bind", target, source, request.read_only))
        else:
            check_volume_name(request.source)
            mounts.append(
                MountSpec(
                    "volume", target, request.source, request.read_only, volume_labels=volume_labels
                )
            )
    return mounts


# A Docker image reference: [registry[:port]/]path[:tag][@sha256:digest], or a full image id.
# Checked before it is put into an Engine API path, so that '..' or '?' cannot reach another
# endpoint.
_HOST_PART = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_REF_RE = re.compile(
    rf"^(?:{_HOST_PART}(?:\.{_HOST_PART})*(?::[0-9]{{1,5}})?/)?"
    rf"{_PATH_PART}(?:/{_PATH_PART})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@sha256:[0-9a-f]{64})?\Z"
)
_IMAGE_ID_RE = re.compile(r"^sha256:[0-9a-f]{64}\Z")
IMAGE_REF_MAX = 255


def check_image_ref(ref: str) -> str:
    """Refuse anything that is not a plain image reference (before any engine call)."""
    if len(ref) > IMAGE_REF_MAX or not (_IMAGE_REF_RE.match(ref) or _IMAGE_ID_RE.match(ref)):
        raise ValidationError(
            f"image {ref[:80]!r} is not a valid image reference",
            resolution="Use a reference such as 'registry.example/team/agent:1.0'.",
        )
    return ref


def choose_runtime(
    requested: str | None, default: str | None, allowed: Iterable[str]
) -> str | None:
    """The container runtime for an agent: the service's, or one the request may pick."""
    if requested is None or requested == default:
        return default
    if requested in set(allowed):
        return requested
    raise RuntimeForbiddenError(f"runtime {requested[:64]!r} is not allowed for agents")


def check_runtime_available(runtime: str | None, engine_runtimes: Iterable[str]) -> None:
    """Refuse a runtime the engine does not have, before anything is created."""
    known = set(engine_runtimes)
    if runtime is not None and known and runtime not in known:
        offered = ", ".join(sorted(known))
        raise RuntimeUnavailableError(
            f"the Docker engine has no runtime {runtime[:64]!r} (it has: {offered})"
        )


def with_run_as(spec: ContainerSpec, run_as: RunAs, tmpfs_size: str) -> ContainerSpec:
    """``spec`` running as ``run_as``, its private tmpfs owned by it."""
    fresh = runtime_tmpfs(run_as, tmpfs_size)
    tmpfs = {path: fresh.get(path, options) for path, options in spec.tmpfs.items()}
    return replace(spec, user=run_as.user, tmpfs=tmpfs)


def runtime_tmpfs(run_as: RunAs, size: str) -> dict[str, str]:
    """Writable places on a read-only root: scratch, home, workspace and the runtime's dir.

    Owned by the agent's user, so the agent can write its CLI config into home without the root
    filesystem being writable. (The engine keeps the mode of a folder the image already has
    there, so a tmpfs must be owned by its user, not merely open to all.)
    """
    base = f"rw,nosuid,nodev,size={size}"
    uid, gid = run_as.uid, run_as.gid if run_as.gid is not None else run_as.uid
    private = f"{base},uid={uid},gid={gid},mode=0700" if uid is not None else f"{base},mode=1777"
    return {
        "/tmp": f"{base},mode=1777",  # noqa: S108 - a tmpfs inside the container, not the host's
        AGENT_RUN_DIR: private,
        AGENT_HOME: private,
        AGENT_WORKSPACE: private,
    }
