"""Fail closed on a Swarm, twice: the service the manager stored must hold every setting that was
sent, and the container a node made of it must hold every control, including those API 1.41
cannot say per service (no-new-privileges, the swap limit, the IPC mode), which the nodes'
engines are configured to apply (docs/swarm.md). Pure functions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from parallax_docker.backends.swarm.translate import RUNTIME_LABEL
from parallax_docker.errors import InsecureSpawnError

# Settings of the service spec whose stored value must equal the one sent: an older manager
# drops fields it does not know (Pids, CapabilityDrop) without a word.
_SERVICE_FIELDS: tuple[tuple[str, ...], ...] = (
    ("TaskTemplate", "ContainerSpec", "ReadOnly"),
    ("TaskTemplate", "ContainerSpec", "Init"),
    ("TaskTemplate", "ContainerSpec", "CapabilityDrop"),
    ("TaskTemplate", "ContainerSpec", "User"),
    ("TaskTemplate", "Resources", "Limits", "MemoryBytes"),
    ("TaskTemplate", "Resources", "Limits", "NanoCPUs"),
    ("TaskTemplate", "Resources", "Limits", "Pids"),
    ("TaskTemplate", "RestartPolicy", "Condition"),
    ("TaskTemplate", "LogDriver"),
)

# Run in the placed container: its init's NoNewPrivs flag, with shell builtins only.
NO_NEW_PRIVS_PROBE: tuple[str, ...] = (
    "/bin/sh",
    "-c",
    'while IFS= read -r line; do case "$line" in NoNewPrivs:*) echo "$line";; esac; '
    "done < /proc/1/status",
)


def _at(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = data
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def service_problems(sent: Mapping[str, Any], stored: Mapping[str, Any]) -> list[str]:
    """What the stored service spec lacks of the one sent; empty when all holds."""
    problems = []
    for path in _SERVICE_FIELDS:
        wanted = _at(sent, path)
        if wanted is not None and _at(stored, path) != wanted:
            problems.append(f"{path[-1]} was not kept by the manager")
    sent_mounts = _mount_set(_at(sent, ("TaskTemplate", "ContainerSpec", "Mounts")))
    if not sent_mounts <= _mount_set(_at(stored, ("TaskTemplate", "ContainerSpec", "Mounts"))):
        problems.append("a mount was not kept by the manager")
    secrets = _at(stored, ("TaskTemplate", "ContainerSpec", "Secrets")) or []
    if len(secrets) != len(_at(sent, ("TaskTemplate", "ContainerSpec", "Secrets")) or []):
        problems.append("a secret was not kept by the manager")
    return problems


def _mount_set(mounts: Any) -> set[tuple[str, str, bool, str]]:
    # The volume driver's options too: without them an agent's tmpfs would be a disk folder.
    return {
        (
            str(m.get("Type")),
            str(m.get("Target")),
            bool(m.get("ReadOnly")),
            json.dumps(_at(m, ("VolumeOptions", "DriverConfig")), sort_keys=True),
        )
        for m in mounts or ()
        if isinstance(m, Mapping)
    }


def no_new_privileges(probe_output: str) -> bool:
    """Whether the probe's output says the container's processes cannot gain privileges."""
    for line in probe_output.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "NoNewPrivs":
            return value.strip() == "1"
    return False


def placed_problems(
    service: Mapping[str, Any],
    inspect: Mapping[str, Any],
    *,
    no_new_privs: bool,
    running: bool = True,
) -> list[str]:
    """What a placed container (GET /containers/{id}/json on its node) lacks of its service's
    spec and of the controls every agent gets; empty when all holds.

    The swap limit and no-new-privileges are set and read while it runs; of one that has ended
    already, they are not asked."""
    spec = service.get("Spec") or {}
    container = _at(spec, ("TaskTemplate", "ContainerSpec")) or {}
    limits = _at(spec, ("TaskTemplate", "Resources", "Limits")) or {}
    host = inspect.get("HostConfig") or {}
    problems: list[str] = []

    def expect(field: str, wanted: Any) -> None:
        if host.get(field) != wanted:
            problems.append(f"{field} is {host.get(field)!r}, wanted {wanted!r}")

    memory = int(limits.get("MemoryBytes") or 0)
    expect("Memory", memory)
    if running:
        # No swap beyond the memory limit (set on the node after placement: 1.41 cannot say it).
        expect("MemorySwap", memory)
    expect("NanoCpus", int(limits.get("NanoCPUs") or 0))
    expect("PidsLimit", int(limits.get("Pids") or 0))
    expect("ReadonlyRootfs", bool(container.get("ReadOnly")))
    expect("Privileged", False)
    if container.get("Init"):
        expect("Init", True)
    if host.get("CapAdd"):
        problems.append("capabilities were added")
    if container.get("CapabilityDrop") == ["ALL"] and [
        c.upper() for c in host.get("CapDrop") or ()
    ] not in (["ALL"], ["CAP_ALL"]):
        problems.append("not every capability is dropped")
    if running and not no_new_privs:
        problems.append("no-new-privileges is not in force")
    if any("unconfined" in str(opt) for opt in host.get("SecurityOpt") or ()):
        problems.append("an unconfined security profile is set")
    for mode in ("PidMode", "IpcMode", "UTSMode", "UsernsMode", "NetworkMode"):
        if str(host.get(mode) or "") == "host":
            problems.append(f"{mode} is host")
    if str(host.get("IpcMode") or "") not in ("private", "none"):
        problems.append(f"IpcMode is {host.get('IpcMode')!r}, wanted private")
    if host.get("Devices"):
        problems.append("devices are mapped")
    log_options = (_at(spec, ("TaskTemplate", "LogDriver")) or {}).get("Options") or {}
    log_config = host.get("LogConfig") or {}
    if log_config.get("Type") != "json-file" or any(
        (log_config.get("Config") or {}).get(key) != value for key, value in log_options.items()
    ):
        problems.append("log rotation is not applied")
    user = (inspect.get("Config") or {}).get("User") or None
    if container.get("User") and user != container.get("User"):
        problems.append(f"user is {user!r}, wanted {container.get('User')!r}")
    constraints = _at(spec, ("TaskTemplate", "Placement", "Constraints")) or ()
    for constraint in constraints:
        key, _, runtime = str(constraint).partition("==")
        if key.strip() == f"engine.labels.{RUNTIME_LABEL}" and host.get("Runtime") != runtime:
            problems.append(f"runtime is {host.get('Runtime')!r}, wanted {runtime!r}")
    placed = {(str(m.get("Type")), str(m.get("Target"))) for m in host.get("Mounts") or ()}
    for wanted in container.get("Mounts") or ():
        if (str(wanted.get("Type")), str(wanted.get("Target"))) not in placed:
            problems.append(f"mount {wanted.get('Target')} is missing")
    return problems


def refuse(problems: list[str], where: str) -> InsecureSpawnError:
    return InsecureSpawnError(
        f"the agent's {where} does not match its security policy: " + "; ".join(problems),
        resolution="Configure every node's engine as docs/swarm.md shows (no-new-privileges, "
        "private IPC, json-file logs), then spawn again.",
    )
