"""A ContainerSpec as a Swarm service spec, and the manager's nodes as NodeInfo (pure)."""

from __future__ import annotations

from typing import Any

from parallax_docker.backends.base import ContainerSpec, MountSpec
from parallax_docker.backends.swarm.translate import (
    TMPFS_LABEL,
    Reservation,
    node_info,
    node_runtimes,
    repository,
    secret_file,
    service_spec,
    tmpfs_mount,
)

MIB = 1024 * 1024


def spec(**changes: Any) -> ContainerSpec:
    fields: dict[str, Any] = {
        "name": "parallax-agent-1",
        "image": "parallax/agent-echo:latest",
        "labels": {"parallax.managed": "true", "parallax.agent.id": "agent-1"},
        "network": "parallax-agents",
        "aliases": ("one", "parallax-agent-1", "agent-1"),
        "memory_bytes": 256 * MIB,
        "nano_cpus": 500_000_000,
        "pids_limit": 512,
        "user": "1000:1000",
        "workdir": "/workspace",
        "tmpfs": {
            "/tmp": "rw,nosuid,nodev,size=256m,mode=1777",
            "/home/agent": "rw,nosuid,nodev,size=256m,uid=1000,gid=1000,mode=0700",
        },
    }
    fields.update(changes)
    return ContainerSpec(**fields)


def test_service_has_one_task_at_most_that_swarm_never_restarts() -> None:
    body = service_spec(spec(), image="reg:5000/p/a@sha256:" + "1" * 64, network="net")
    assert body["Mode"] == {"Replicated": {"Replicas": 0}}
    assert body["TaskTemplate"]["RestartPolicy"] == {"Condition": "none", "MaxAttempts": 0}
    assert body["EndpointSpec"] == {"Mode": "dnsrr"}
    assert body["TaskTemplate"]["ContainerSpec"]["Image"].endswith("@sha256:" + "1" * 64)


def test_service_carries_every_control_api_1_41_can_say() -> None:
    body = service_spec(spec(), image="img", network="net")
    container = body["TaskTemplate"]["ContainerSpec"]
    assert container["ReadOnly"] is True
    assert container["Init"] is True
    assert container["CapabilityDrop"] == ["ALL"]
    assert container["User"] == "1000:1000"
    assert "CapabilityAdd" not in container
    limits = body["TaskTemplate"]["Resources"]["Limits"]
    assert limits == {"MemoryBytes": 256 * MIB, "NanoCPUs": 500_000_000, "Pids": 512}
    assert body["TaskTemplate"]["LogDriver"] == {
        "Name": "json-file",
        "Options": {"max-size": "10m", "max-file": "3"},
    }
    assert body["TaskTemplate"]["Networks"] == [
        {"Target": "net", "Aliases": ["one", "parallax-agent-1", "agent-1"]}
    ]


def test_reservations_follow_the_admission_overcommit() -> None:
    body = service_spec(
        spec(),
        image="img",
        network="net",
        reservation=Reservation(memory_overcommit=1.0, cpu_overcommit=4.0),
    )
    assert body["TaskTemplate"]["Resources"]["Reservations"] == {
        "MemoryBytes": 256 * MIB,
        "NanoCPUs": 125_000_000,
    }


def test_secret_mounts_become_swarm_secrets_and_never_env() -> None:
    secret = MountSpec("secret", "/run/parallax/env", "agent-1/env", read_only=True)
    files = [secret_file("sid", "parallax-agent-1-env-ab", "/run/parallax/env", "1000:1000")]
    body = service_spec(spec(mounts=(secret,)), image="img", network="net", secrets=files)
    container = body["TaskTemplate"]["ContainerSpec"]
    assert container["Env"] == []
    assert all(m["Type"] != "secret" for m in container["Mounts"])
    assert container["Secrets"] == [
        {
            "SecretID": "sid",
            "SecretName": "parallax-agent-1-env-ab",
            "File": {"Name": "/run/parallax/env", "UID": "1000", "GID": "1000", "Mode": 0o400},
        }
    ]


def test_a_secret_of_a_named_user_is_readable_inside_the_container_only() -> None:
    assert secret_file("s", "n", "/run/parallax/env", "agent").mode == 0o444
    assert secret_file("s", "n", "/run/parallax/env", None).uid == "0"


def test_a_tmpfs_is_a_node_local_tmpfs_volume_with_the_very_same_options() -> None:
    # API 1.41's tmpfs mounts have no owner and are noexec: a local tmpfs volume has both.
    options = "rw,nosuid,nodev,size=256m,uid=1000,gid=1000,mode=0700"
    labels = {"parallax.managed": "true", "parallax.agent.id": "a1", "other": "x"}
    home = tmpfs_mount("/home/agent", options, labels)
    assert home == {
        "Type": "volume",
        "Target": "/home/agent",
        "ReadOnly": False,
        "VolumeOptions": {
            "NoCopy": True,
            "Labels": {
                "parallax.managed": "true",
                "parallax.agent.id": "a1",
                TMPFS_LABEL: "/home/agent",
            },
            "DriverConfig": {
                "Name": "local",
                "Options": {"type": "tmpfs", "device": "tmpfs", "o": options},
            },
        },
    }


def test_a_request_mount_replaces_the_runtime_tmpfs_at_its_target() -> None:
    volume = MountSpec("volume", "/home/agent", "parallax-exec-x", volume_labels={"a": "b"})
    mounts = service_spec(spec(mounts=(volume,)), image="img", network="net")["TaskTemplate"][
        "ContainerSpec"
    ]["Mounts"]
    assert [m["Target"] for m in mounts] == ["/home/agent", "/tmp"]
    assert mounts[0]["VolumeOptions"] == {"Labels": {"a": "b"}}


def test_a_runtime_is_a_placement_on_nodes_that_declare_it() -> None:
    body = service_spec(
        spec(runtime="runsc"), image="img", network="net", constraints=["node.id==n1"]
    )
    placement = body["TaskTemplate"]["Placement"]
    assert placement["Constraints"] == ["node.id==n1", "engine.labels.parallax.runtime==runsc"]
    assert placement["Preferences"] == [{"Spread": {"SpreadDescriptor": "node.id"}}]


def test_entrypoint_and_command_map_to_swarm_command_and_args() -> None:
    body = service_spec(
        spec(entrypoint=("/bin/sh", "-c", "x"), command=("a", "b")), image="img", network="net"
    )
    container = body["TaskTemplate"]["ContainerSpec"]
    assert (container["Command"], container["Args"]) == (["/bin/sh", "-c", "x"], ["a", "b"])
    only_args = service_spec(spec(command=("a",)), image="img", network="net")
    assert "Command" not in only_args["TaskTemplate"]["ContainerSpec"]


def test_node_info_reads_a_manager_that_reports_its_listen_address() -> None:
    node = node_info(
        {
            "ID": "n1",
            "Spec": {"Role": "manager", "Availability": "drain"},
            "Description": {
                "Hostname": "host-1",
                "Resources": {"MemoryBytes": 8 * 1024 * MIB, "NanoCPUs": 2_000_000_000},
                "Engine": {"Labels": {"parallax.runtime": "runsc"}},
            },
            "Status": {"State": "ready", "Addr": "0.0.0.0"},
            "ManagerStatus": {"Leader": True, "Addr": "10.0.0.5:2377"},
        }
    )
    assert (node.name, node.role, node.availability, node.address) == (
        "host-1",
        "manager",
        "drain",
        "10.0.0.5",
    )
    assert node.cpus == 2.0 and node.leader and not node.schedulable


def test_node_runtimes_come_from_its_engine_label() -> None:
    assert node_runtimes({"Description": {"Engine": {"Labels": {"parallax.runtime": "runc"}}}}) == {
        "runc"
    }
    assert node_runtimes({}) == set()


def test_repository_drops_registry_host_tag_and_digest() -> None:
    assert repository("parallax/agent-echo:latest") == ("parallax/agent-echo", "latest")
    assert repository("reg.local:5000/team/a:1.2") == ("team/a", "1.2")
    assert repository("localhost/a@sha256:" + "0" * 64) == ("a", "latest")
    assert repository("busybox") == ("busybox", "latest")


def test_a_cpu_reservation_is_never_below_what_the_engine_takes() -> None:
    many = Reservation(cpu_overcommit=100.0)
    assert many.cpus(50_000_000) == 10_000_000
    assert many.cpus(5_000_000) == 5_000_000  # never above the limit itself
    assert many.cpus(0) == 0
