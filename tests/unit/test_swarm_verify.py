"""Fail closed on a Swarm: the stored service and the placed container are checked (pure)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from parallax_docker.backends.base import ContainerSpec
from parallax_docker.backends.swarm.translate import service_spec
from parallax_docker.backends.swarm.verify import (
    no_new_privileges,
    placed_problems,
    refuse,
    service_problems,
)
from parallax_docker.errors import InsecureSpawnError

MIB = 1024 * 1024


def sent() -> dict[str, Any]:
    spec = ContainerSpec(
        name="parallax-agent-1",
        image="img",
        labels={},
        network="net",
        aliases=(),
        memory_bytes=64 * MIB,
        nano_cpus=250_000_000,
        pids_limit=128,
        user="1000:1000",
        runtime="runsc",
        tmpfs={"/tmp": "rw,size=64m,mode=1777"},
    )
    return service_spec(spec, image="img", network="net")


def placed() -> dict[str, Any]:
    """The inspect of a container a well-configured node made of ``sent()``."""
    return {
        "Config": {"User": "1000:1000"},
        "HostConfig": {
            "Memory": 64 * MIB,
            "MemorySwap": 64 * MIB,
            "NanoCpus": 250_000_000,
            "PidsLimit": 128,
            "ReadonlyRootfs": True,
            "Privileged": False,
            "Init": True,
            "CapDrop": ["ALL"],
            "CapAdd": None,
            "SecurityOpt": None,
            "IpcMode": "private",
            "NetworkMode": "default",
            "Devices": None,
            "Runtime": "runsc",
            "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}},
            "Mounts": [{"Type": "volume", "Target": "/tmp"}],
        },
    }


def test_a_stored_spec_that_kept_everything_passes() -> None:
    assert service_problems(sent(), sent()) == []


@pytest.mark.parametrize(
    ("path", "name"),
    [
        (("TaskTemplate", "Resources", "Limits", "Pids"), "Pids"),
        (("TaskTemplate", "ContainerSpec", "CapabilityDrop"), "CapabilityDrop"),
        (("TaskTemplate", "ContainerSpec", "ReadOnly"), "ReadOnly"),
        (("TaskTemplate", "RestartPolicy", "Condition"), "Condition"),
    ],
)
def test_a_manager_that_dropped_a_setting_is_refused(path: tuple[str, ...], name: str) -> None:
    stored = copy.deepcopy(sent())
    parent = stored
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    assert service_problems(sent(), stored) == [f"{name} was not kept by the manager"]


def test_a_tmpfs_volume_stored_without_its_driver_options_is_refused() -> None:
    # Without them the node would make a plain disk volume: no size limit, not in memory.
    stored = copy.deepcopy(sent())
    (tmp,) = stored["TaskTemplate"]["ContainerSpec"]["Mounts"]
    assert tmp["VolumeOptions"]["DriverConfig"]["Options"]["type"] == "tmpfs"
    del tmp["VolumeOptions"]["DriverConfig"]
    assert service_problems(sent(), stored) == ["a mount was not kept by the manager"]


def test_a_placed_container_with_every_control_passes() -> None:
    assert placed_problems({"Spec": sent()}, placed(), no_new_privs=True) == []


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("MemorySwap", 128 * MIB, "MemorySwap"),
        ("PidsLimit", 0, "PidsLimit"),
        ("ReadonlyRootfs", False, "ReadonlyRootfs"),
        ("CapDrop", ["NET_RAW"], "not every capability is dropped"),
        ("CapAdd", ["SYS_ADMIN"], "capabilities were added"),
        ("IpcMode", "shareable", "IpcMode"),
        ("PidMode", "host", "PidMode is host"),
        ("SecurityOpt", ["seccomp=unconfined"], "unconfined"),
        ("Runtime", "runc", "runtime"),
        ("Init", False, "Init"),
        ("Mounts", [], "mount /tmp is missing"),
    ],
)
def test_a_placed_container_that_lacks_a_control_is_refused(
    field: str, value: Any, problem: str
) -> None:
    inspect = placed()
    inspect["HostConfig"][field] = value
    problems = placed_problems({"Spec": sent()}, inspect, no_new_privs=True)
    assert any(problem in p for p in problems), problems


def test_no_new_privileges_must_be_seen_in_force() -> None:
    problems = placed_problems({"Spec": sent()}, placed(), no_new_privs=False)
    assert problems == ["no-new-privileges is not in force"]


def test_a_container_that_has_ended_is_not_asked_what_only_a_running_one_tells() -> None:
    inspect = placed()
    inspect["HostConfig"]["MemorySwap"] = 128 * MIB
    assert placed_problems({"Spec": sent()}, inspect, no_new_privs=False, running=False) == []


def test_the_probe_output_is_read_strictly() -> None:
    assert no_new_privileges("NoNewPrivs:\t1\n")
    assert not no_new_privileges("NoNewPrivs:\t0\n")
    assert not no_new_privileges("")
    assert not no_new_privileges("sh: can't open /proc/1/status")


def test_refusal_names_the_problems_and_how_to_fix_the_nodes() -> None:
    error = refuse(["a", "b"], "container on node n1")
    assert isinstance(error, InsecureSpawnError)
    assert error.code == "INSECURE_SPAWN" and "a; b" in error.message
    assert "docs/swarm.md" in error.resolution
