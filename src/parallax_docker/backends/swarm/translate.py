"""A ContainerSpec -> a Swarm service spec (API 1.41), and what the manager reports -> the
project's types. Pure functions.

One service per agent, one replica, restart policy none (the runtime's autoRestart decides),
DNS round robin on an overlay network (names resolve to the task itself, no virtual IP), and
every control API 1.41 can say per service. What it cannot say is enforced by the nodes'
engines and checked on the placed container (verify.py, docs/swarm.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from parallax_docker.backends.base import ContainerSpec, MountSpec, NodeInfo

_NS = 1_000_000_000
# The label the engine puts on a task's container: the service it belongs to.
SERVICE_LABEL = "com.docker.swarm.service.id"
# The engine label a node's daemon.json sets to say which OCI runtime it runs containers with.
RUNTIME_LABEL = "parallax.runtime"
# Where agents spread: one more agent goes to the node with the fewest of this service family.
SPREAD = {"Spread": {"SpreadDescriptor": "node.id"}}
# The label that names an agent (on its service, its container and its tmpfs volumes).
AGENT_LABEL = "parallax.agent.id"
# Marks the node-local volumes that are an agent's tmpfs (with the path they are mounted at).
TMPFS_LABEL = "parallax.volume.tmpfs"
MIN_NANO_CPUS = 10_000_000


# The labels that say which runtime instance owns an object; copied from an agent's labels
# onto what is made for it alone (its secrets, its isolated network).
OWNER_LABELS = ("parallax.managed", "parallax.instance")


def owner_labels(labels: Mapping[str, str]) -> dict[str, str]:
    return {key: labels[key] for key in OWNER_LABELS if key in labels}


@dataclass(frozen=True)
class SecretFile:
    """A Swarm secret mounted as a file in the agent."""

    secret_id: str
    secret_name: str
    target: str
    uid: str
    gid: str
    mode: int


@dataclass(frozen=True)
class Reservation:
    """What the scheduler sets aside on a node for an agent (admission's overcommit)."""

    memory_overcommit: float = 1.0
    cpu_overcommit: float = 4.0

    def memory(self, limit: int) -> int:
        return int(limit / self.memory_overcommit) if limit else 0

    def cpus(self, limit: int) -> int:
        # The engine takes no CPU amount below a hundredth of a core.
        return min(limit, max(int(limit / self.cpu_overcommit), MIN_NANO_CPUS)) if limit else 0


def tmpfs_mount(target: str, options: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """A ``HostConfig.Tmpfs``-style entry as a Swarm mount: a volume of the node's local driver
    mounted as tmpfs with exactly these options. API 1.41's own tmpfs mounts take a size and a
    mode only (no owner), are always noexec, and take the mode of a folder the image has there
    instead; this one is the same tmpfs as on one host, and goes with the task's container.
    (The node also makes an unused twin before the container: ``SwarmVolumes.sweep_tmpfs``.)"""
    agent = {AGENT_LABEL: labels[AGENT_LABEL]} if AGENT_LABEL in labels else {}
    return {
        "Type": "volume",
        "Target": target,
        "ReadOnly": False,
        "VolumeOptions": {
            "NoCopy": True,
            "Labels": {**owner_labels(labels), **agent, TMPFS_LABEL: target},
            "DriverConfig": {
                "Name": "local",
                "Options": {"type": "tmpfs", "device": "tmpfs", "o": options},
            },
        },
    }


def mount(spec: MountSpec) -> dict[str, Any]:
    body: dict[str, Any] = {"Type": spec.kind, "Target": spec.target, "ReadOnly": spec.read_only}
    if spec.kind == "bind":
        body["Source"] = spec.source
        body["BindOptions"] = {"Propagation": "rprivate"}
    elif spec.kind == "volume":
        body["Source"] = spec.source
        body["VolumeOptions"] = {"Labels": dict(spec.volume_labels)}
    else:
        body["TmpfsOptions"] = {"SizeBytes": spec.size_bytes, "Mode": spec.mode}
    return body


def _ids(user: str | None) -> tuple[str | None, str | None]:
    name, _, group = (user or "").partition(":")
    uid = name if name.isdigit() else None
    gid = group if group.isdigit() else uid
    return uid, gid


def secret_file(secret_id: str, name: str, target: str, user: str | None) -> SecretFile:
    """Owner-only for a numeric user; readable by all (inside the container) otherwise."""
    uid, gid = _ids(user)
    if uid is None:
        return SecretFile(secret_id, name, target, "0", "0", 0o444)
    return SecretFile(secret_id, name, target, uid, gid or uid, 0o400)


def service_spec(
    spec: ContainerSpec,
    *,
    image: str,
    network: str,
    secrets: Sequence[SecretFile] = (),
    constraints: Sequence[str] = (),
    reservation: Reservation = Reservation(),
) -> dict[str, Any]:
    """The body of POST /services/create for ``spec``, with no replica yet (``start`` adds it)."""
    mounts = [mount(m) for m in spec.mounts if m.kind != "secret"]
    targets = {m["Target"] for m in mounts}
    mounts += [
        tmpfs_mount(path, options, spec.labels)
        for path, options in spec.tmpfs.items()
        if path not in targets
    ]
    container: dict[str, Any] = {
        "Image": image,
        "Labels": dict(spec.labels),
        "Env": [f"{key}={value}" for key, value in spec.env.items()],
        "ReadOnly": spec.read_only_rootfs,
        "Init": spec.init,
        "CapabilityDrop": ["ALL"] if spec.cap_drop_all else [],
        "StopSignal": spec.stop_signal,
        "StopGracePeriod": spec.stop_timeout_s * _NS,
        "Mounts": mounts,
        "Secrets": [
            {
                "SecretID": s.secret_id,
                "SecretName": s.secret_name,
                "File": {"Name": s.target, "UID": s.uid, "GID": s.gid, "Mode": s.mode},
            }
            for s in secrets
        ],
    }
    if spec.entrypoint is not None:
        container["Command"] = list(spec.entrypoint)
    if spec.command is not None:
        container["Args"] = list(spec.command)
    if spec.workdir:
        container["Dir"] = spec.workdir
    if spec.user:
        container["User"] = spec.user
    if spec.healthcheck is not None:
        probe = spec.healthcheck
        container["HealthCheck"] = {
            "Test": ["CMD", *probe.argv],
            "Interval": int(probe.interval_s * _NS),
            "Timeout": int(probe.timeout_s * _NS),
            "Retries": probe.retries,
            "StartPeriod": int(probe.start_period_s * _NS),
        }
    elif not spec.image_healthcheck:
        container["HealthCheck"] = {"Test": ["NONE"]}
    placement = list(constraints)
    if spec.runtime:
        placement.append(f"engine.labels.{RUNTIME_LABEL}=={spec.runtime}")
    return {
        "Name": spec.name,
        "Labels": dict(spec.labels),
        "TaskTemplate": {
            "ContainerSpec": container,
            "Resources": {
                "Limits": {
                    "MemoryBytes": spec.memory_bytes,
                    "NanoCPUs": spec.nano_cpus,
                    "Pids": spec.pids_limit,
                },
                "Reservations": {
                    "MemoryBytes": reservation.memory(spec.memory_bytes),
                    "NanoCPUs": reservation.cpus(spec.nano_cpus),
                },
            },
            "RestartPolicy": {"Condition": "none", "MaxAttempts": 0},
            "Placement": {"Constraints": placement, "Preferences": [SPREAD]},
            "LogDriver": {
                "Name": "json-file",
                "Options": {"max-size": spec.log_max_size, "max-file": str(spec.log_max_files)},
            },
            "Networks": [{"Target": network, "Aliases": list(spec.aliases)}],
        },
        "Mode": {"Replicated": {"Replicas": 0}},
        "EndpointSpec": {"Mode": "dnsrr"},
    }


# -- what the manager reports -----------------------------------------------------------------


def node_info(data: Mapping[str, Any]) -> NodeInfo:
    spec = data.get("Spec") or {}
    description = data.get("Description") or {}
    resources = description.get("Resources") or {}
    status = data.get("Status") or {}
    manager = data.get("ManagerStatus") or {}
    address = str(status.get("Addr") or "")
    if address in ("", "0.0.0.0"):  # a manager may report its listen address
        address = str(manager.get("Addr") or "").rpartition(":")[0]
    return NodeInfo(
        id=str(data.get("ID", "")),
        name=str(description.get("Hostname") or data.get("ID", "")),
        role=str(spec.get("Role") or "worker"),
        state=str(status.get("State") or "unknown"),
        availability=str(spec.get("Availability") or "active"),
        address=address,
        memory_bytes=int(resources.get("MemoryBytes") or 0),
        cpus=int(resources.get("NanoCPUs") or 0) / _NS,
        leader=bool(manager.get("Leader")),
    )


def node_runtimes(data: Mapping[str, Any]) -> set[str]:
    labels = ((data.get("Description") or {}).get("Engine") or {}).get("Labels") or {}
    runtime = labels.get(RUNTIME_LABEL)
    return {runtime} if isinstance(runtime, str) and runtime else set()


_REF_TAG = re.compile(r"^(?P<path>.+?)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?$")


def repository(ref: str) -> tuple[str, str]:
    """(path, tag) of an image reference without its registry host and digest."""
    name = ref.partition("@")[0]
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        name = rest
    match = _REF_TAG.match(name)
    assert match is not None
    return match["path"], match["tag"] or "latest"
