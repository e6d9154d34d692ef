"""Domain types <-> Docker Engine API JSON (API 1.41 and newer). Pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from parallax_docker.backends.base import (
    ContainerEvent,
    ContainerSpec,
    ContainerState,
    ImageInfo,
    NetworkInfo,
    StatsSample,
    VolumeInfo,
)

_NS = 1_000_000_000
# The engine reports this timestamp for containers that never started or never stopped.
_ZERO_TIME = "0001-01-01T00:00:00Z"


def _mount_json(
    kind: str,
    target: str,
    source: str,
    read_only: bool,
    labels: Mapping[str, str],
    size: int,
    mode: int,
) -> dict[str, Any]:
    mount: dict[str, Any] = {"Type": kind, "Target": target, "ReadOnly": read_only}
    if kind == "bind":
        # Mounts (not Binds) make a missing source an error instead of a new root-owned folder;
        # private propagation keeps host mount events from reaching the agent.
        mount["Source"] = source
        mount["BindOptions"] = {"Propagation": "rprivate"}
    elif kind == "volume":
        mount["Source"] = source
        mount["VolumeOptions"] = {"Labels": dict(labels)}
    else:
        mount["TmpfsOptions"] = {"SizeBytes": size, "Mode": mode}
    return mount


def container_config(spec: ContainerSpec) -> dict[str, Any]:
    """The body of POST /containers/create for ``spec``."""
    security_opt = ["no-new-privileges:true"] if spec.no_new_privileges else []
    host_config: dict[str, Any] = {
        "Memory": spec.memory_bytes,
        # Equal to Memory: no swap beyond the limit.
        "MemorySwap": spec.memory_bytes,
        "NanoCpus": spec.nano_cpus,
        "PidsLimit": spec.pids_limit,
        "ReadonlyRootfs": spec.read_only_rootfs,
        "CapDrop": ["ALL"] if spec.cap_drop_all else [],
        "CapAdd": [],
        "SecurityOpt": security_opt,
        "Privileged": False,
        "Init": spec.init,
        "Tmpfs": dict(spec.tmpfs),
        "Mounts": [
            _mount_json(
                m.kind, m.target, m.source, m.read_only, m.volume_labels, m.size_bytes, m.mode
            )
            for m in spec.mounts
        ],
        "LogConfig": {
            "Type": "json-file",
            "Config": {"max-size": spec.log_max_size, "max-file": str(spec.log_max_files)},
        },
        "NetworkMode": spec.network,
        "RestartPolicy": {"Name": "no"},
        "IpcMode": "private",
        "PidMode": "",
        "UTSMode": "",
        "UsernsMode": "",
        "Devices": [],
        "OomKillDisable": False,
    }
    if spec.runtime:
        host_config["Runtime"] = spec.runtime
    config: dict[str, Any] = {
        "Image": spec.image,
        "Labels": dict(spec.labels),
        "Env": [f"{key}={value}" for key, value in spec.env.items()],
        "HostConfig": host_config,
        "StopSignal": spec.stop_signal,
        "StopTimeout": spec.stop_timeout_s,
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Tty": False,
        "OpenStdin": False,
    }
    if spec.command is not None:
        config["Cmd"] = list(spec.command)
    if spec.entrypoint is not None:
        config["Entrypoint"] = list(spec.entrypoint)
    if spec.workdir:
        config["WorkingDir"] = spec.workdir
    if spec.user:
        config["User"] = spec.user
    if not spec.image_healthcheck and spec.healthcheck is None:
        config["Healthcheck"] = {"Test": ["NONE"]}
    if spec.healthcheck is not None:
        probe = spec.healthcheck
        config["Healthcheck"] = {
            "Test": ["CMD", *probe.argv],
            "Interval": int(probe.interval_s * _NS),
            "Timeout": int(probe.timeout_s * _NS),
            "Retries": probe.retries,
            "StartPeriod": int(probe.start_period_s * _NS),
        }
    if spec.network != "none":
        config["NetworkingConfig"] = {
            "EndpointsConfig": {spec.network: {"Aliases": list(spec.aliases)}}
        }
    return config


def _time(value: str | None) -> str | None:
    if not value or value.startswith("0001-01-01"):
        return None
    return value


def container_state(data: Mapping[str, Any]) -> ContainerState:
    """A ContainerState from GET /containers/{id}/json."""
    state = data.get("State") or {}
    config = data.get("Config") or {}
    host = data.get("HostConfig") or {}
    health = state.get("Health") or {}
    networks = ((data.get("NetworkSettings") or {}).get("Networks") or {}).keys()
    status = str(state.get("Status", "unknown"))
    exit_code = state.get("ExitCode")
    return ContainerState(
        id=str(data.get("Id", "")),
        name=str(data.get("Name", "")).lstrip("/"),
        image=str(config.get("Image", "")),
        labels=dict(config.get("Labels") or {}),
        status=status,
        running=bool(state.get("Running", False)),
        exit_code=int(exit_code)
        if exit_code is not None and status in ("exited", "dead")
        else None,
        oom_killed=bool(state.get("OOMKilled", False)),
        health=health.get("Status") if health else None,
        created_at=_time(data.get("Created")),
        started_at=_time(state.get("StartedAt")),
        finished_at=_time(state.get("FinishedAt")),
        error=state.get("Error") or None,
        networks=tuple(networks),
        pid=int(state["Pid"]) if state.get("Pid") else None,
        restart_count=int(data.get("RestartCount") or 0),
        memory_bytes=int(host.get("Memory") or 0),
        nano_cpus=int(host.get("NanoCpus") or 0),
        pids_limit=int(host.get("PidsLimit") or 0),
    )


def list_entry_state(data: Mapping[str, Any]) -> ContainerState:
    """A partial ContainerState from one GET /containers/json entry (no exit details)."""
    names = data.get("Names") or ["/"]
    networks = ((data.get("NetworkSettings") or {}).get("Networks") or {}).keys()
    status = str(data.get("State", "unknown"))
    return ContainerState(
        id=str(data.get("Id", "")),
        name=str(names[0]).lstrip("/"),
        image=str(data.get("Image", "")),
        labels=dict(data.get("Labels") or {}),
        status=status,
        running=status == "running",
        exit_code=None,
        oom_killed=False,
        health=None,
        created_at=None,
        started_at=None,
        finished_at=None,
        error=None,
        networks=tuple(networks),
    )


def image_info(data: Mapping[str, Any]) -> ImageInfo:
    config = data.get("Config") or {}
    health = config.get("Healthcheck") or {}
    test = tuple(health.get("Test") or ()) or None
    return ImageInfo(
        id=str(data.get("Id", "")),
        tags=tuple(data.get("RepoTags") or ()),
        user=config.get("User") or None,
        healthcheck=test,
        labels=dict(config.get("Labels") or {}),
        size=int(data.get("Size") or 0),
        created=data.get("Created"),
        entrypoint=_argv(config.get("Entrypoint")),
        cmd=_argv(config.get("Cmd")),
        health_interval_s=int(health.get("Interval") or 0) / _NS,
        health_timeout_s=int(health.get("Timeout") or 0) / _NS,
        health_retries=int(health.get("Retries") or 0),
        health_start_period_s=int(health.get("StartPeriod") or 0) / _NS,
    )


def _argv(value: Any) -> tuple[str, ...] | None:
    """An image's Entrypoint or Cmd: a list, a legacy shell-form string, or nothing."""
    if not value:
        return None
    if isinstance(value, str):
        return ("/bin/sh", "-c", value)
    return tuple(str(part) for part in value)


def container_event(data: Mapping[str, Any]) -> ContainerEvent | None:
    if data.get("Type") != "container":
        return None
    actor = data.get("Actor") or {}
    attributes = dict(actor.get("Attributes") or {})
    exit_code = attributes.pop("exitCode", None)
    action = str(data.get("Action") or data.get("status") or "")
    # Health events read "health_status: healthy"; keep the verb, the status goes to labels.
    if action.startswith("health_status"):
        attributes["health_status"] = action.partition(":")[2].strip()
        action = "health_status"
    return ContainerEvent(
        action=action.partition(":")[0],
        container_id=str(actor.get("ID") or data.get("id") or ""),
        labels=attributes,
        time_ns=int(data.get("timeNano") or int(data.get("time") or 0) * _NS),
        exit_code=int(exit_code) if exit_code is not None else None,
    )


def stats_sample(data: Mapping[str, Any]) -> StatsSample:
    cpu = data.get("cpu_stats") or {}
    usage = cpu.get("cpu_usage") or {}
    memory = data.get("memory_stats") or {}
    mem_stats = memory.get("stats") or {}
    # Page cache is reclaimable; count it out, as `docker stats` does (cgroup v1 and v2 keys).
    cache = int(mem_stats.get("total_inactive_file", mem_stats.get("inactive_file", 0)) or 0)
    networks = data.get("networks") or {}
    online = int(cpu.get("online_cpus") or len(usage.get("percpu_usage") or ()) or 1)
    return StatsSample(
        cpu_total_ns=int(usage.get("total_usage") or 0),
        system_cpu_ns=int(cpu.get("system_cpu_usage") or 0),
        online_cpus=online,
        memory_usage=max(0, int(memory.get("usage") or 0) - cache),
        memory_limit=int(memory.get("limit") or 0),
        pids=int((data.get("pids_stats") or {}).get("current") or 0),
        rx_bytes=sum(int(n.get("rx_bytes") or 0) for n in networks.values()),
        tx_bytes=sum(int(n.get("tx_bytes") or 0) for n in networks.values()),
        raw=data,
    )


def network_info(data: Mapping[str, Any]) -> NetworkInfo:
    return NetworkInfo(
        name=str(data.get("Name", "")),
        labels=dict(data.get("Labels") or {}),
        containers=len(data.get("Containers") or {}),
        created=data.get("Created"),
        internal=bool(data.get("Internal", False)),
    )


def volume_info(data: Mapping[str, Any]) -> VolumeInfo:
    return VolumeInfo(
        name=str(data.get("Name", "")),
        labels=dict(data.get("Labels") or {}),
        created=data.get("CreatedAt"),
    )
