"""Fail closed: every deviation of the created container from its spec is found."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from parallax_docker.backends.base import ContainerSpec, MountSpec
from parallax_docker.backends.docker.translate import container_config
from parallax_docker.backends.docker.verify import (
    missing_program,
    program_paths,
    security_problems,
    verify_created,
)
from parallax_docker.errors import InsecureSpawnError

MIB = 1024**2


def make_spec(**changes: Any) -> ContainerSpec:
    spec = ContainerSpec(
        name="parallax-agent-1",
        image="parallax/agent-claude:latest",
        labels={"parallax.managed": "true"},
        network="parallax-agents",
        aliases=("agent-1",),
        memory_bytes=512 * MIB,
        nano_cpus=500_000_000,
        pids_limit=256,
        mounts=(
            MountSpec("bind", "/workspace/p", "/srv/p", read_only=True),
            MountSpec("volume", "/cache", "cache"),
        ),
        log_max_size="10m",
        log_max_files=3,
    )
    return dataclasses.replace(spec, **changes)


def matching_inspect(spec: ContainerSpec) -> dict[str, Any]:
    """What the engine reports for a container created exactly as asked."""
    return {"Id": "abc", "HostConfig": copy.deepcopy(container_config(spec)["HostConfig"])}


def problems_with(spec: ContainerSpec, **host_changes: Any) -> list[str]:
    inspect = matching_inspect(spec)
    inspect["HostConfig"].update(host_changes)
    return security_problems(spec, inspect)


SPEC = make_spec()


def test_security_problems_finds_none_for_a_matching_container() -> None:
    assert security_problems(SPEC, matching_inspect(SPEC)) == []


def test_security_problems_accepts_the_cap_all_spelling() -> None:
    assert problems_with(SPEC, CapDrop=["CAP_ALL"]) == []


def test_security_problems_accepts_the_equals_spelling_of_no_new_privileges() -> None:
    assert problems_with(SPEC, SecurityOpt=["no-new-privileges=true"]) == []


def test_security_problems_finds_a_dropped_memory_limit() -> None:
    assert any("Memory " in p for p in problems_with(SPEC, Memory=0))


def test_security_problems_finds_extra_swap() -> None:
    assert any("MemorySwap" in p for p in problems_with(SPEC, MemorySwap=-1))


def test_security_problems_finds_a_dropped_cpu_limit() -> None:
    assert any("NanoCpus" in p for p in problems_with(SPEC, NanoCpus=0))


def test_security_problems_finds_a_dropped_pids_limit() -> None:
    assert any("PidsLimit" in p for p in problems_with(SPEC, PidsLimit=None))


def test_security_problems_finds_a_writable_root_filesystem() -> None:
    assert any("ReadonlyRootfs" in p for p in problems_with(SPEC, ReadonlyRootfs=False))


def test_security_problems_finds_privileged_mode() -> None:
    assert any("Privileged" in p for p in problems_with(SPEC, Privileged=True))


def test_security_problems_finds_a_missing_init() -> None:
    assert any("Init" in p for p in problems_with(SPEC, Init=None))


def test_security_problems_finds_added_capabilities() -> None:
    assert "capabilities were added" in problems_with(SPEC, CapAdd=["NET_ADMIN"])


@pytest.mark.parametrize("cap_drop", [None, [], ["NET_RAW"], ["ALL", "NET_RAW"]])
def test_security_problems_finds_capabilities_not_all_dropped(cap_drop: list[str] | None) -> None:
    assert "not every capability is dropped" in problems_with(SPEC, CapDrop=cap_drop)


@pytest.mark.parametrize("security_opt", [None, [], ["no-new-privileges:false"]])
def test_security_problems_finds_no_new_privileges_missing(security_opt: list[str] | None) -> None:
    assert "no-new-privileges is not set" in problems_with(SPEC, SecurityOpt=security_opt)


@pytest.mark.parametrize(
    "option", ["seccomp=unconfined", "seccomp:unconfined", "apparmor=unconfined"]
)
def test_security_problems_finds_an_unconfined_profile(option: str) -> None:
    problems = problems_with(SPEC, SecurityOpt=["no-new-privileges:true", option])
    assert problems == ["an unconfined security profile is set"]


@pytest.mark.parametrize("mode", ["PidMode", "IpcMode", "UTSMode", "UsernsMode"])
def test_security_problems_finds_a_host_namespace(mode: str) -> None:
    assert f"{mode} is host" in problems_with(SPEC, **{mode: "host"})


def test_security_problems_finds_a_different_network_mode() -> None:
    assert "the network mode differs" in problems_with(SPEC, NetworkMode="host")


def test_security_problems_finds_mapped_devices() -> None:
    device = {"PathOnHost": "/dev/kmsg", "PathInContainer": "/dev/kmsg", "CgroupPermissions": "r"}
    assert "devices are mapped" in problems_with(SPEC, Devices=[device])


def test_security_problems_finds_another_log_driver() -> None:
    log_config = {"Type": "local", "Config": {"max-size": "10m"}}
    assert "log rotation is not applied" in problems_with(SPEC, LogConfig=log_config)


def test_security_problems_finds_a_missing_log_size_limit() -> None:
    log_config = {"Type": "json-file", "Config": {}}
    assert "log rotation is not applied" in problems_with(SPEC, LogConfig=log_config)


def test_security_problems_finds_a_different_log_file_count() -> None:
    log_config = {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "1000"}}
    assert problems_with(SPEC, LogConfig=log_config) != []


def test_security_problems_finds_a_missing_runtime() -> None:
    spec = make_spec(runtime="runsc")
    inspect = matching_inspect(spec)
    inspect["HostConfig"]["Runtime"] = "runc"
    assert security_problems(spec, inspect) == ["runtime is 'runc', wanted 'runsc'"]


def test_security_problems_ignores_the_runtime_when_none_was_asked_for() -> None:
    assert problems_with(SPEC, Runtime="runc") == []


def test_security_problems_finds_a_missing_mount() -> None:
    inspect = matching_inspect(SPEC)
    inspect["HostConfig"]["Mounts"] = inspect["HostConfig"]["Mounts"][1:]
    assert security_problems(SPEC, inspect) == ["mount /workspace/p is missing"]


def test_security_problems_finds_a_mount_of_another_kind_on_the_target() -> None:
    inspect = matching_inspect(SPEC)
    inspect["HostConfig"]["Mounts"][1]["Type"] = "bind"
    assert security_problems(SPEC, inspect) == ["mount /cache is missing"]


def test_security_problems_finds_a_read_only_mount_made_writable() -> None:
    inspect = matching_inspect(SPEC)
    inspect["HostConfig"]["Mounts"][0]["ReadOnly"] = False
    assert security_problems(SPEC, inspect) != []


def test_security_problems_finds_everything_missing_from_an_empty_inspect() -> None:
    assert len(security_problems(SPEC, {})) >= 10


def test_verify_created_passes_a_matching_container() -> None:
    verify_created(SPEC, matching_inspect(SPEC))


def test_verify_created_refuses_a_deviating_container_with_insecure_spawn() -> None:
    inspect = matching_inspect(SPEC)
    inspect["HostConfig"]["Memory"] = 0
    with pytest.raises(InsecureSpawnError, match="Memory") as info:
        verify_created(SPEC, inspect)
    assert info.value.code == "INSECURE_SPAWN"


# -- the entrypoint's program -----------------------------------------------------------------


def test_an_absolute_program_is_looked_for_where_it_says() -> None:
    assert program_paths("/bin/sh", {}) == ["/bin/sh"]


def test_a_bare_program_is_looked_for_on_the_containers_path() -> None:
    inspect = {"Config": {"Env": ["HOME=/x", "PATH=/opt/bin:/bin"]}}
    assert program_paths("tool", inspect) == ["/opt/bin/tool", "/bin/tool"]


def test_without_a_path_the_engines_default_path_applies() -> None:
    assert program_paths("tool", {"Config": {}})[-1] == "/bin/tool"
    assert len(program_paths("tool", {"Config": {}})) == 6


def test_a_relative_program_is_looked_for_in_the_working_directory() -> None:
    inspect = {"Config": {"WorkingDir": "/workspace"}}
    assert program_paths("./run.sh", inspect) == ["/workspace/run.sh"]
    assert program_paths("../bin/x", {"Config": {}}) == ["/bin/x"]


def test_a_missing_shell_says_why_the_runtime_needs_it() -> None:
    error = missing_program("example/app:1", "/bin/sh")
    assert "/bin/sh" in error.message and "env" in error.message
    assert "parallax/agent-base" in error.resolution
    other = missing_program("example/app:1", "/usr/bin/tool")
    assert "/usr/bin/tool" in other.message and other.code == "VALIDATION_ERROR"
