"""Fail closed: after create, read the container back and check the engine applied the spec.

An engine that cannot enforce a limit (no cgroup controller, an old kernel) may accept the
request and drop the setting. An agent is only started once its inspect shows every limit and
every security option that was asked for.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from parallax_docker.backends.base import ContainerSpec
from parallax_docker.errors import InsecureSpawnError, ValidationError


def security_problems(spec: ContainerSpec, inspect: Mapping[str, Any]) -> list[str]:
    """What ``inspect`` (GET /containers/{id}/json) lacks of ``spec``; empty when all holds."""
    host = inspect.get("HostConfig") or {}
    problems: list[str] = []

    def expect(field: str, wanted: Any) -> None:
        if host.get(field) != wanted:
            problems.append(f"{field} is {host.get(field)!r}, wanted {wanted!r}")

    expect("Memory", spec.memory_bytes)
    expect("MemorySwap", spec.memory_bytes)
    expect("NanoCpus", spec.nano_cpus)
    expect("PidsLimit", spec.pids_limit)
    expect("ReadonlyRootfs", spec.read_only_rootfs)
    expect("Privileged", False)
    if spec.init:
        expect("Init", True)
    if host.get("CapAdd"):
        problems.append("capabilities were added")
    if spec.cap_drop_all and [c.upper() for c in host.get("CapDrop") or ()] not in (
        ["ALL"],
        ["CAP_ALL"],
    ):
        problems.append("not every capability is dropped")
    security_opt = host.get("SecurityOpt") or []
    if spec.no_new_privileges and not any(
        opt.replace("=", ":") in ("no-new-privileges:true", "no-new-privileges")
        for opt in security_opt
    ):
        problems.append("no-new-privileges is not set")
    if any("unconfined" in opt for opt in security_opt):
        problems.append("an unconfined security profile is set")
    if host.get("NetworkMode") != spec.network:
        problems.append("the network mode differs")
    for mode in ("PidMode", "IpcMode", "UTSMode", "UsernsMode"):
        if str(host.get(mode) or "") == "host":
            problems.append(f"{mode} is host")
    if host.get("Devices"):
        problems.append("devices are mapped")
    log_config = host.get("LogConfig") or {}
    if (
        log_config.get("Type") != "json-file"
        or (log_config.get("Config") or {}).get("max-size") != spec.log_max_size
        or (log_config.get("Config") or {}).get("max-file") != str(spec.log_max_files)
    ):
        problems.append("log rotation is not applied")
    user = (inspect.get("Config") or {}).get("User") or None
    if spec.user and user != spec.user:
        problems.append(f"user is {user!r}, wanted {spec.user!r}")
    if spec.runtime and host.get("Runtime") != spec.runtime:
        problems.append(f"runtime is {host.get('Runtime')!r}, wanted {spec.runtime!r}")
    mounted = {
        (m.get("Type"), m.get("Target")): bool(m.get("ReadOnly")) for m in host.get("Mounts") or ()
    }
    for mount in spec.mounts:
        if (mount.kind, mount.target) not in mounted:
            problems.append(f"mount {mount.target} is missing")
        elif mount.read_only and not mounted[(mount.kind, mount.target)]:
            problems.append(f"mount {mount.target} is writable, wanted read-only")
    return problems


def verify_created(spec: ContainerSpec, inspect: Mapping[str, Any]) -> None:
    problems = security_problems(spec, inspect)
    if problems:
        raise InsecureSpawnError(
            "the created container does not match its security policy: " + "; ".join(problems)
        )


_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def program_paths(program: str, inspect: Mapping[str, Any]) -> list[str]:
    """Where the engine would look for ``program`` in the created container: the path itself,
    each directory of the container's PATH for a bare name, the working directory otherwise."""
    if program.startswith("/"):
        return [program]
    config = inspect.get("Config") or {}
    if "/" in program:
        workdir = str(config.get("WorkingDir") or "/")
        return [posixpath.normpath(posixpath.join(workdir, program))]
    path = _DEFAULT_PATH
    for entry in config.get("Env") or ():
        name, _, value = str(entry).partition("=")
        if name == "PATH":
            path = value
    return [posixpath.join(folder or ".", program) for folder in path.split(":") if folder]


def missing_program(image: str, program: str) -> ValidationError:
    if program == "/bin/sh":
        # /bin/sh is the runtime's own wrapper: env values reach an image without the parallax
        # entrypoint through a shell (they are never put in the container's Env).
        return ValidationError(
            f"image {image[:120]} has no /bin/sh, which an image without the parallax "
            "entrypoint needs to receive env values (they are never put in the container's Env)",
            resolution="Build the image FROM parallax/agent-base, add /bin/sh, or spawn it "
            "without env and credentials.",
        )
    return ValidationError(
        f"image {image[:120]} has no {program[:200]}, the program its entrypoint runs",
        resolution="Use an image that has the program, or change the agent's command.",
    )
