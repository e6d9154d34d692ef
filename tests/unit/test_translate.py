"""Domain types <-> Engine API JSON (parallax_docker.backends.docker.translate)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from parallax_docker.backends.base import ContainerSpec, HealthProbe, MountSpec
from parallax_docker.backends.docker.translate import (
    container_config,
    container_event,
    container_state,
    image_info,
    list_entry_state,
    stats_sample,
)

MIB = 1024**2


def make_spec(**changes: Any) -> ContainerSpec:
    spec = ContainerSpec(
        name="parallax-agent-1",
        image="parallax/agent-claude:latest",
        labels={"parallax.managed": "true"},
        network="parallax-agents",
        aliases=("coder", "parallax-agent-1", "agent-1"),
        memory_bytes=512 * MIB,
        nano_cpus=500_000_000,
        pids_limit=256,
        tmpfs={"/tmp": "rw,size=64m"},
        log_max_size="5m",
        log_max_files=4,
    )
    return dataclasses.replace(spec, **changes)


def host_config(spec: ContainerSpec) -> dict[str, Any]:
    config: dict[str, Any] = container_config(spec)["HostConfig"]
    return config


# -- container_config -------------------------------------------------------------------------


def test_container_config_sets_the_memory_limit() -> None:
    assert host_config(make_spec())["Memory"] == 512 * MIB


def test_container_config_gives_no_swap_beyond_the_memory_limit() -> None:
    config = host_config(make_spec())
    assert config["MemorySwap"] == config["Memory"]


def test_container_config_sets_nano_cpus() -> None:
    assert host_config(make_spec())["NanoCpus"] == 500_000_000


def test_container_config_sets_the_pids_limit() -> None:
    assert host_config(make_spec())["PidsLimit"] == 256


def test_container_config_makes_the_root_filesystem_read_only() -> None:
    assert host_config(make_spec())["ReadonlyRootfs"] is True


def test_container_config_drops_every_capability_and_adds_none() -> None:
    config = host_config(make_spec())
    assert (config["CapDrop"], config["CapAdd"]) == (["ALL"], [])


def test_container_config_sets_no_new_privileges() -> None:
    assert host_config(make_spec())["SecurityOpt"] == ["no-new-privileges:true"]


def test_container_config_is_never_privileged() -> None:
    assert host_config(make_spec())["Privileged"] is False


def test_container_config_runs_an_init_process() -> None:
    assert host_config(make_spec())["Init"] is True


def test_container_config_maps_no_devices_and_shares_no_host_namespace() -> None:
    config = host_config(make_spec())
    assert config["Devices"] == []
    assert config["IpcMode"] == "private"
    assert "host" not in (config["PidMode"], config["UTSMode"], config["UsernsMode"])


def test_container_config_passes_the_tmpfs_table() -> None:
    assert host_config(make_spec())["Tmpfs"] == {"/tmp": "rw,size=64m"}


def test_container_config_rotates_json_file_logs() -> None:
    assert host_config(make_spec())["LogConfig"] == {
        "Type": "json-file",
        "Config": {"max-size": "5m", "max-file": "4"},
    }


def test_container_config_turns_off_the_engines_restart_policy() -> None:
    assert host_config(make_spec())["RestartPolicy"] == {"Name": "no"}


def test_container_config_makes_a_bind_mount_with_private_propagation() -> None:
    spec = make_spec(mounts=(MountSpec("bind", "/workspace/p", "/srv/p", read_only=True),))
    assert host_config(spec)["Mounts"] == [
        {
            "Type": "bind",
            "Target": "/workspace/p",
            "ReadOnly": True,
            "Source": "/srv/p",
            "BindOptions": {"Propagation": "rprivate"},
        }
    ]


def test_container_config_labels_a_named_volume_mount() -> None:
    mount = MountSpec("volume", "/cache", "cache", volume_labels={"parallax.managed": "true"})
    assert host_config(make_spec(mounts=(mount,)))["Mounts"] == [
        {
            "Type": "volume",
            "Target": "/cache",
            "ReadOnly": False,
            "Source": "cache",
            "VolumeOptions": {"Labels": {"parallax.managed": "true"}},
        }
    ]


def test_container_config_sizes_a_tmpfs_mount() -> None:
    mount = MountSpec("tmpfs", "/scratch", size_bytes=8 * MIB, mode=0o700)
    assert host_config(make_spec(mounts=(mount,)))["Mounts"] == [
        {
            "Type": "tmpfs",
            "Target": "/scratch",
            "ReadOnly": False,
            "TmpfsOptions": {"SizeBytes": 8 * MIB, "Mode": 0o700},
        }
    ]


def test_container_config_uses_mounts_never_binds() -> None:
    spec = make_spec(mounts=(MountSpec("bind", "/data", "/srv/data"),))
    assert "Binds" not in host_config(spec)


def test_container_config_attaches_the_network_with_every_alias() -> None:
    config = container_config(make_spec())
    assert config["HostConfig"]["NetworkMode"] == "parallax-agents"
    assert config["NetworkingConfig"] == {
        "EndpointsConfig": {
            "parallax-agents": {"Aliases": ["coder", "parallax-agent-1", "agent-1"]}
        }
    }


def test_container_config_has_no_networking_config_for_network_none() -> None:
    config = container_config(make_spec(network="none"))
    assert config["HostConfig"]["NetworkMode"] == "none"
    assert "NetworkingConfig" not in config


def test_container_config_sets_a_runtime_only_when_configured() -> None:
    assert "Runtime" not in host_config(make_spec())
    assert host_config(make_spec(runtime="runsc"))["Runtime"] == "runsc"


def test_container_config_passes_image_labels_and_env() -> None:
    config = container_config(make_spec(env={"A": "1", "B": "x=y"}))
    assert config["Image"] == "parallax/agent-claude:latest"
    assert config["Labels"] == {"parallax.managed": "true"}
    assert config["Env"] == ["A=1", "B=x=y"]


def test_container_config_passes_command_entrypoint_workdir_and_user() -> None:
    config = container_config(
        make_spec(
            command=("claude", "--print"), entrypoint=("/init",), workdir="/workspace", user="agent"
        )
    )
    assert config["Cmd"] == ["claude", "--print"]
    assert config["Entrypoint"] == ["/init"]
    assert (config["WorkingDir"], config["User"]) == ("/workspace", "agent")


def test_container_config_leaves_the_images_command_and_user_when_not_given() -> None:
    config = container_config(make_spec())
    assert not {"Cmd", "Entrypoint", "WorkingDir", "User", "Healthcheck"} & set(config)


def test_container_config_switches_the_images_health_check_off_when_asked() -> None:
    config = container_config(make_spec(image_healthcheck=False))
    assert config["Healthcheck"] == {"Test": ["NONE"]}


def test_container_config_converts_a_health_probe_to_nanoseconds() -> None:
    probe = HealthProbe(("test", "-f", "/ready"), 2.0, 1.5, 3, 0.25)
    assert container_config(make_spec(healthcheck=probe))["Healthcheck"] == {
        "Test": ["CMD", "test", "-f", "/ready"],
        "Interval": 2_000_000_000,
        "Timeout": 1_500_000_000,
        "Retries": 3,
        "StartPeriod": 250_000_000,
    }


def test_container_config_sets_the_stop_signal_and_timeout() -> None:
    config = container_config(make_spec(stop_signal="SIGINT", stop_timeout_s=7))
    assert (config["StopSignal"], config["StopTimeout"]) == ("SIGINT", 7)


def test_container_config_attaches_no_terminal_or_stdin() -> None:
    config = container_config(make_spec())
    assert not any(config[k] for k in ("AttachStdin", "Tty", "OpenStdin"))


# -- container_state --------------------------------------------------------------------------

ZERO = "0001-01-01T00:00:00Z"


def inspect_json(state: dict[str, Any], **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "Id": "abc123",
        "Name": "/parallax-agent-1",
        "Created": "2026-01-01T00:00:00.123456789Z",
        "RestartCount": 0,
        "Config": {"Image": "parallax/agent-claude:latest", "Labels": {"k": "v"}},
        "HostConfig": {"Memory": 512 * MIB, "NanoCpus": 500_000_000, "PidsLimit": 256},
        "NetworkSettings": {"Networks": {"parallax-agents": {}}},
        "State": {
            "Status": "running",
            "Running": True,
            "OOMKilled": False,
            "Pid": 4242,
            "ExitCode": 0,
            "Error": "",
            "StartedAt": "2026-01-01T00:00:01.5Z",
            "FinishedAt": ZERO,
            **state,
        },
    }
    data.update(extra)
    return data


def test_container_state_reads_a_running_container() -> None:
    state = container_state(inspect_json({}))
    assert (state.id, state.name, state.status, state.running) == (
        "abc123",
        "parallax-agent-1",
        "running",
        True,
    )
    assert (state.image, dict(state.labels), state.networks) == (
        "parallax/agent-claude:latest",
        {"k": "v"},
        ("parallax-agents",),
    )
    assert state.pid == 4242


def test_container_state_has_no_exit_code_while_running() -> None:
    assert container_state(inspect_json({})).exit_code is None


def test_container_state_reads_the_exit_code_of_an_exited_container() -> None:
    state = container_state(
        inspect_json(
            {
                "Status": "exited",
                "Running": False,
                "ExitCode": 3,
                "Pid": 0,
                "FinishedAt": "2026-01-01T00:00:09Z",
            }
        )
    )
    assert (state.running, state.exit_code, state.pid) == (False, 3, None)
    assert state.finished_at == "2026-01-01T00:00:09Z"


def test_container_state_reads_the_oom_kill_flag() -> None:
    state = container_state(
        inspect_json({"Status": "exited", "Running": False, "ExitCode": 137, "OOMKilled": True})
    )
    assert (state.oom_killed, state.exit_code) == (True, 137)


def test_container_state_reads_the_health_status() -> None:
    state = container_state(inspect_json({"Health": {"Status": "healthy", "FailingStreak": 0}}))
    assert state.health == "healthy"


def test_container_state_has_no_health_without_a_healthcheck() -> None:
    assert container_state(inspect_json({})).health is None


def test_container_state_turns_zero_timestamps_into_none() -> None:
    state = container_state(
        inspect_json({"Status": "created", "Running": False, "StartedAt": ZERO}, Created=ZERO)
    )
    assert (state.created_at, state.started_at, state.finished_at) == (None, None, None)


def test_container_state_keeps_real_timestamps() -> None:
    state = container_state(inspect_json({}))
    assert state.created_at == "2026-01-01T00:00:00.123456789Z"
    assert state.started_at == "2026-01-01T00:00:01.5Z"


def test_container_state_reads_the_applied_limits() -> None:
    state = container_state(inspect_json({}))
    assert (state.memory_bytes, state.nano_cpus, state.pids_limit) == (512 * MIB, 500_000_000, 256)


def test_container_state_reads_the_engines_error() -> None:
    state = container_state(
        inspect_json(
            {"Status": "exited", "Running": False, "ExitCode": 127, "Error": "no such file"}
        )
    )
    assert state.error == "no such file"


def test_container_state_tolerates_missing_sections() -> None:
    state = container_state({"Id": "x"})
    assert (state.id, state.status, state.running, state.labels) == ("x", "unknown", False, {})


def test_list_entry_state_reads_a_list_entry() -> None:
    state = list_entry_state(
        {
            "Id": "abc",
            "Names": ["/parallax-agent-1"],
            "Image": "img",
            "Labels": {"a": "b"},
            "State": "running",
        }
    )
    assert (state.name, state.running, dict(state.labels)) == ("parallax-agent-1", True, {"a": "b"})


# -- container_event --------------------------------------------------------------------------


def event_json(action: str, **attributes: str) -> dict[str, Any]:
    return {
        "Type": "container",
        "Action": action,
        "Actor": {"ID": "abc123", "Attributes": {"parallax.agent.id": "agent-1", **attributes}},
        "time": 1_700_000_000,
        "timeNano": 1_700_000_000_123_456_789,
    }


def test_container_event_reads_a_die_event_with_its_exit_code() -> None:
    event = container_event(event_json("die", exitCode="137"))
    assert event is not None
    assert (event.action, event.container_id, event.exit_code) == ("die", "abc123", 137)
    assert "exitCode" not in event.labels


def test_container_event_keeps_the_labels() -> None:
    event = container_event(event_json("start"))
    assert event is not None
    assert event.labels["parallax.agent.id"] == "agent-1"
    assert event.exit_code is None


def test_container_event_splits_a_health_status_event() -> None:
    event = container_event(event_json("health_status: healthy"))
    assert event is not None
    assert event.action == "health_status"
    assert event.labels["health_status"] == "healthy"


def test_container_event_keeps_only_the_verb_of_an_exec_event() -> None:
    event = container_event(event_json("exec_start: /bin/sh -c true"))
    assert event is not None
    assert event.action == "exec_start"


def test_container_event_reads_the_nanosecond_time() -> None:
    event = container_event(event_json("start"))
    assert event is not None
    assert event.time_ns == 1_700_000_000_123_456_789


def test_container_event_falls_back_to_seconds_without_a_nanosecond_time() -> None:
    data = event_json("start")
    del data["timeNano"]
    event = container_event(data)
    assert event is not None
    assert event.time_ns == 1_700_000_000 * 1_000_000_000


@pytest.mark.parametrize("kind", ["network", "image", "volume", "daemon", None])
def test_container_event_ignores_events_that_are_not_about_containers(kind: str | None) -> None:
    data = event_json("create")
    data["Type"] = kind
    assert container_event(data) is None


# -- stats_sample -----------------------------------------------------------------------------


def stats_json(memory_stats: dict[str, Any], **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "cpu_stats": {
            "cpu_usage": {"total_usage": 5_000, "percpu_usage": [2_500, 2_500]},
            "system_cpu_usage": 90_000,
            "online_cpus": 2,
        },
        "memory_stats": memory_stats,
        "pids_stats": {"current": 7},
        "networks": {
            "eth0": {"rx_bytes": 100, "tx_bytes": 10},
            "eth1": {"rx_bytes": 50, "tx_bytes": 5},
        },
    }
    data.update(extra)
    return data


def test_stats_sample_subtracts_cgroup_v1_page_cache() -> None:
    sample = stats_sample(
        stats_json(
            {"usage": 100 * MIB, "limit": 512 * MIB, "stats": {"total_inactive_file": 30 * MIB}}
        )
    )
    assert (sample.memory_usage, sample.memory_limit) == (70 * MIB, 512 * MIB)


def test_stats_sample_subtracts_cgroup_v2_page_cache() -> None:
    sample = stats_sample(
        stats_json({"usage": 100 * MIB, "limit": 512 * MIB, "stats": {"inactive_file": 40 * MIB}})
    )
    assert sample.memory_usage == 60 * MIB


def test_stats_sample_never_reports_negative_memory() -> None:
    sample = stats_sample(stats_json({"usage": MIB, "stats": {"inactive_file": 2 * MIB}}))
    assert sample.memory_usage == 0


def test_stats_sample_sums_every_network() -> None:
    sample = stats_sample(stats_json({}))
    assert (sample.rx_bytes, sample.tx_bytes) == (150, 15)


def test_stats_sample_reads_cpu_and_pids() -> None:
    sample = stats_sample(stats_json({}))
    assert (sample.cpu_total_ns, sample.system_cpu_ns, sample.online_cpus, sample.pids) == (
        5_000,
        90_000,
        2,
        7,
    )


def test_stats_sample_counts_per_cpu_entries_when_online_cpus_is_missing() -> None:
    data = stats_json({})
    del data["cpu_stats"]["online_cpus"]
    assert stats_sample(data).online_cpus == 2


def test_stats_sample_reads_a_container_without_networks() -> None:
    sample = stats_sample(stats_json({}, networks=None))
    assert (sample.rx_bytes, sample.tx_bytes) == (0, 0)


def test_stats_sample_tolerates_an_empty_sample() -> None:
    sample = stats_sample({})
    assert (sample.memory_usage, sample.online_cpus, sample.pids) == (0, 1, 0)


# -- image_info -------------------------------------------------------------------------------


def test_image_info_reads_user_healthcheck_and_tags() -> None:
    info = image_info(
        {
            "Id": "sha256:abc",
            "RepoTags": ["parallax/agent-claude:latest"],
            "Size": 1234,
            "Created": "2026-01-01T00:00:00Z",
            "Config": {
                "User": "agent",
                "Healthcheck": {"Test": ["CMD", "true"]},
                "Labels": {"org.opencontainers.image.title": "claude"},
            },
        }
    )
    assert (info.id, info.tags, info.user, info.healthcheck, info.size) == (
        "sha256:abc",
        ("parallax/agent-claude:latest",),
        "agent",
        ("CMD", "true"),
        1234,
    )
    assert dict(info.labels) == {"org.opencontainers.image.title": "claude"}


def test_image_info_has_no_user_or_healthcheck_when_the_image_sets_none() -> None:
    info = image_info({"Id": "sha256:abc", "Config": {"User": "", "Labels": None}})
    assert (info.user, info.healthcheck, info.tags, dict(info.labels)) == (None, None, (), {})


def test_image_info_reads_entrypoint_and_cmd() -> None:
    info = image_info(
        {
            "Id": "sha256:abc",
            "Config": {"Entrypoint": ["/usr/local/bin/parallax-entrypoint"], "Cmd": ["idle"]},
        }
    )
    assert (info.entrypoint, info.cmd) == (("/usr/local/bin/parallax-entrypoint",), ("idle",))


def test_image_info_reads_a_shell_form_cmd_as_sh_c() -> None:
    info = image_info({"Id": "sha256:abc", "Config": {"Entrypoint": None, "Cmd": "run --fast"}})
    assert (info.entrypoint, info.cmd) == (None, ("/bin/sh", "-c", "run --fast"))
