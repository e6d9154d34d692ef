"""Request -> plan -> container spec (parallax_docker.runtime.spec)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from parallax_docker.backends.base import MountSpec
from parallax_docker.config import Settings, load_settings
from parallax_docker.errors import (
    LimitAboveHostError,
    NetworkForbiddenError,
    ValidationError,
    VolumeForbiddenError,
)
from parallax_docker.models import SpawnRequest
from parallax_docker.runtime.labels import MANAGED, PREFIX
from parallax_docker.runtime.spec import (
    PlannedAgent,
    container_spec,
    health_probe,
    plan_agent,
    spec_hash,
)
from tests.unit.fakes import image

MIB, GIB = 1024**2, 1024**3
HOST_MEMORY = 8 * GIB
HOST_CPUS = 4
SECRET = "sk-SECRET-123"


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(environ={})


def request(**fields: Any) -> SpawnRequest:
    body: dict[str, Any] = {"name": "coder", "type": "claude"}
    body.update(fields)
    return SpawnRequest.model_validate(body)


def plan(settings: Settings, **fields: Any) -> PlannedAgent:
    return plan_agent(request(**fields), settings, host_memory=HOST_MEMORY, host_cpus=HOST_CPUS)


# -- defaults and identity --------------------------------------------------------------------


def test_plan_agent_applies_the_default_memory(settings: Settings) -> None:
    assert plan(settings).labels.memory_bytes == 512 * MIB


def test_plan_agent_applies_the_default_cpu(settings: Settings) -> None:
    assert plan(settings).labels.nano_cpus == 500_000_000


def test_plan_agent_applies_the_pids_limit_setting(settings: Settings) -> None:
    assert plan(settings).labels.pids_limit == settings.pids_limit


def test_plan_agent_attaches_to_the_default_network(settings: Settings) -> None:
    assert plan(settings).network.name == "parallax-agents"


def test_plan_agent_picks_the_image_of_the_agent_type(settings: Settings) -> None:
    assert plan(settings).image == "parallax/agent-claude:latest"


def test_plan_agent_picks_the_base_image_for_a_custom_agent(settings: Settings) -> None:
    assert plan(settings, type="custom").image == "parallax/agent-base:latest"


def test_plan_agent_uses_the_requested_image(settings: Settings) -> None:
    assert plan(settings, type="custom", image="my/tool:1").image == "my/tool:1"


def test_plan_agent_generates_an_id_of_the_form_agent_hex(settings: Settings) -> None:
    assert re.fullmatch(r"agent-[0-9a-f]{12}", plan(settings).labels.id)


def test_plan_agent_generates_a_new_id_each_time(settings: Settings) -> None:
    assert plan(settings).labels.id != plan(settings).labels.id


def test_plan_agent_keeps_a_requested_id(settings: Settings) -> None:
    assert plan(settings, id="agent-123").labels.id == "agent-123"


@pytest.mark.parametrize("field", ["id", "name", "executionId"])
@pytest.mark.parametrize("value", ["has space", "-dash", "a/b", "ünï"])
def test_plan_agent_refuses_ids_and_names_docker_would_refuse(
    settings: Settings, field: str, value: str
) -> None:
    with pytest.raises(ValidationError, match=f"^{field} "):
        plan(settings, **{field: value})


def test_plan_agent_records_the_request_fields_in_the_labels(settings: Settings) -> None:
    labels = plan(
        settings,
        role="engineer",
        reportsTo="lead",
        capabilities=["code"],
        executionId="exec-1",
        autoRestart=True,
        idleTimeout=60,
        resources={"timeout": 300},
    ).labels
    assert (labels.role, labels.reports_to, labels.capabilities) == ("engineer", "lead", ("code",))
    assert (labels.execution_id, labels.auto_restart, labels.idle_timeout, labels.timeout) == (
        "exec-1",
        True,
        60,
        300,
    )


# -- labels -----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["parallax.managed", "parallax.agent.id", "parallax.x"])
def test_plan_agent_refuses_labels_with_the_reserved_prefix(settings: Settings, key: str) -> None:
    with pytest.raises(ValidationError, match="reserved"):
        plan(settings, labels={key: "x"})


def test_plan_agent_keeps_user_labels_sorted(settings: Settings) -> None:
    labels = plan(settings, labels={"tier": "gold", "parallaxian": "yes", "team": "a"}).labels
    assert labels.user_labels == (("parallaxian", "yes"), ("team", "a"), ("tier", "gold"))


# -- env and credentials ----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["1BAD", "BAD-KEY", "BAD KEY", "", "A=B"])
def test_plan_agent_refuses_invalid_env_keys(settings: Settings, key: str) -> None:
    with pytest.raises(ValidationError, match="env key"):
        plan(settings, env={key: SECRET})


def test_plan_agent_refuses_an_invalid_custom_credential_name(settings: Settings) -> None:
    with pytest.raises(ValidationError, match="env key"):
        plan(settings, credentials={"custom": {"my-token": SECRET}})


def test_plan_agent_never_echoes_an_env_value_in_its_errors(settings: Settings) -> None:
    with pytest.raises(ValidationError) as info:
        plan(settings, env={"BAD KEY": SECRET})
    assert SECRET not in str(info.value.to_body())


def test_plan_agent_maps_credentials_to_the_clis_variables(settings: Settings) -> None:
    planned = plan(
        settings,
        credentials={
            "anthropicKey": "a-key",
            "openaiKey": "o-key",
            "googleKey": "g-key",
            "githubToken": "gh-token",
            "custom": {"MY_TOKEN": "m-token"},
        },
    )
    assert planned.env == {
        "ANTHROPIC_API_KEY": "a-key",
        "OPENAI_API_KEY": "o-key",
        "GOOGLE_API_KEY": "g-key",
        "GITHUB_TOKEN": "gh-token",
        "MY_TOKEN": "m-token",
    }


def test_plan_agent_passes_env_and_credentials_together(settings: Settings) -> None:
    planned = plan(settings, env={"FOO": "bar"}, credentials={"anthropicKey": SECRET})
    assert planned.env == {"FOO": "bar", "ANTHROPIC_API_KEY": SECRET}


def test_plan_agent_records_only_the_sorted_names_of_secrets(settings: Settings) -> None:
    planned = plan(settings, env={"ZED": SECRET}, credentials={"githubToken": SECRET})
    assert planned.labels.env_keys == ("GITHUB_TOKEN", "ZED")


def test_plan_agent_keeps_secret_values_out_of_the_labels(settings: Settings) -> None:
    planned = plan(settings, env={"FOO": SECRET}, credentials={"anthropicKey": SECRET})
    assert SECRET not in str(planned.labels.encode())


# -- resources --------------------------------------------------------------------------------


def test_plan_agent_applies_requested_resources(settings: Settings) -> None:
    labels = plan(settings, resources={"memory": "1.5Gi", "cpu": "250m"}).labels
    assert (labels.memory_bytes, labels.nano_cpus) == (GIB + GIB // 2, 250_000_000)


def test_plan_agent_refuses_memory_above_the_host(settings: Settings) -> None:
    with pytest.raises(LimitAboveHostError) as info:
        plan(settings, resources={"memory": "16g"})
    assert info.value.code == "LIMIT_ABOVE_HOST"


def test_plan_agent_refuses_cpus_above_the_host(settings: Settings) -> None:
    with pytest.raises(LimitAboveHostError):
        plan(settings, resources={"cpu": 8})


@pytest.mark.parametrize("memory", ["lots", "1m", "-1g"])
def test_plan_agent_refuses_memory_that_does_not_parse(settings: Settings, memory: str) -> None:
    with pytest.raises(ValidationError):
        plan(settings, resources={"memory": memory})


# -- network, volumes, workdir, command -------------------------------------------------------


def test_plan_agent_allows_network_none(settings: Settings) -> None:
    assert plan(settings, network="none").network.is_none


def test_plan_agent_refuses_the_host_network(settings: Settings) -> None:
    with pytest.raises(NetworkForbiddenError):
        plan(settings, network="host")


def test_plan_agent_labels_named_volumes_as_managed_with_the_execution_id(
    settings: Settings,
) -> None:
    planned = plan(settings, volumes=["cache:/cache"], executionId="exec-1")
    assert planned.named_volumes[0] == "cache"
    assert dict(planned.mounts[0].volume_labels) == {
        MANAGED: "true",
        "parallax.instance": "default",
        "parallax.execution.id": "exec-1",
    }


def test_plan_agent_gives_an_execution_its_shared_home_volume(settings: Settings) -> None:
    planned = plan(settings, executionId="exec-1")
    (home,) = [m for m in planned.mounts if m.target == "/home/agent"]
    assert (home.kind, home.source) == ("volume", "parallax-exec-exec-1")
    assert dict(home.volume_labels)["parallax.execution.id"] == "exec-1"
    assert planned.named_volumes == ("parallax-exec-exec-1",)


def test_plan_agent_leaves_a_requested_home_mount_alone(settings: Settings) -> None:
    planned = plan(settings, volumes=["mine:/home/agent"], executionId="exec-1")
    assert [m.source for m in planned.mounts] == ["mine"]


def test_plan_agent_refuses_a_forbidden_host_mount(settings: Settings) -> None:
    with pytest.raises(VolumeForbiddenError):
        plan(settings, volumes=["/etc:/data:ro"])


def test_plan_agent_refuses_a_relative_workdir(settings: Settings) -> None:
    with pytest.raises(ValidationError, match="workdir"):
        plan(settings, workdir="workspace/p")


def test_plan_agent_keeps_an_absolute_workdir(settings: Settings) -> None:
    assert plan(settings, workdir="/workspace/p").labels.workdir == "/workspace/p"


def test_plan_agent_splits_a_command_string_without_a_shell(settings: Settings) -> None:
    planned = plan(settings, command="claude --print 'hello world' $HOME;rm -rf /")
    assert planned.command == ("claude", "--print", "hello world", "$HOME;rm", "-rf", "/")


def test_plan_agent_keeps_a_command_list_as_given(settings: Settings) -> None:
    assert plan(settings, command=["sh", "-c", "echo $X"]).command == ("sh", "-c", "echo $X")


def test_plan_agent_leaves_the_command_to_the_image_when_none_is_given(settings: Settings) -> None:
    assert plan(settings).command is None


@pytest.mark.parametrize("command", ["", "   ", [], [""], "'unterminated", ["a\x00b"]])
def test_plan_agent_refuses_a_command_that_names_no_program(
    settings: Settings, command: str | list[str]
) -> None:
    with pytest.raises(ValidationError, match="command"):
        plan(settings, command=command)


# -- spec_hash --------------------------------------------------------------------------------


def test_spec_hash_is_stable_for_one_request() -> None:
    assert spec_hash(request(env={"A": "1"})) == spec_hash(request(env={"A": "1"}))


def test_spec_hash_does_not_depend_on_secret_values() -> None:
    one = request(env={"A": "1"}, credentials={"anthropicKey": "x"})
    two = request(env={"A": "2"}, credentials={"anthropicKey": "y"})
    assert spec_hash(one) == spec_hash(two)


def test_spec_hash_depends_on_env_names() -> None:
    assert spec_hash(request(env={"A": "1"})) != spec_hash(request(env={"B": "1"}))


def test_spec_hash_depends_on_credential_names() -> None:
    one = request(credentials={"anthropicKey": "x"})
    two = request(credentials={"openaiKey": "x"})
    assert spec_hash(one) != spec_hash(two)


def test_spec_hash_depends_on_public_fields() -> None:
    assert spec_hash(request(resources={"memory": "1g"})) != spec_hash(request())


def test_spec_hash_does_not_depend_on_the_id() -> None:
    assert spec_hash(request(id="agent-1")) == spec_hash(request(id="agent-2"))


def test_spec_hash_does_not_depend_on_label_order() -> None:
    one = request(labels={"a": "1", "b": "2"})
    two = request(labels={"b": "2", "a": "1"})
    assert spec_hash(one) == spec_hash(two)


def test_plan_agent_records_the_spec_hash(settings: Settings) -> None:
    assert plan(settings).labels.spec_hash == spec_hash(request())


# -- health_probe -----------------------------------------------------------------------------


def test_health_probe_runs_a_cmd_check_as_argv() -> None:
    assert health_probe(image(healthcheck=("CMD", "test", "-f", "/ready"))) == (
        "test",
        "-f",
        "/ready",
    )


def test_health_probe_runs_a_cmd_shell_check_through_sh() -> None:
    assert health_probe(image(healthcheck=("CMD-SHELL", "curl -f localhost || exit 1"))) == (
        "/bin/sh",
        "-c",
        "curl -f localhost || exit 1",
    )


@pytest.mark.parametrize("check", [None, ("NONE",), ("CMD",), ("BOGUS", "x"), ()])
def test_health_probe_has_no_probe_without_a_usable_check(
    check: tuple[str, ...] | None,
) -> None:
    assert health_probe(image(healthcheck=check)) is None


# -- container_spec ---------------------------------------------------------------------------


def test_container_spec_of_an_agent_that_beats_mounts_its_channel_instead_of_health(
    settings: Settings,
) -> None:
    planned = plan(settings, id="agent-123")
    channel = MountSpec("bind", "/run/parallax/heartbeat", "/secrets/agent-123/heartbeat")
    spec = container_spec(planned, image(), settings, heartbeat=(channel,))
    assert channel in spec.mounts and spec.image_healthcheck is False
    assert spec.env == {"PARALLAX_HEARTBEAT_S": str(settings.heartbeat_interval_s)}
    plain = container_spec(planned, image(), settings)
    assert plain.image_healthcheck is True and plain.env == {} and channel not in plain.mounts


def test_container_spec_names_the_container_after_the_id(settings: Settings) -> None:
    planned = plan(settings, id="agent-123")
    assert container_spec(planned, image(), settings).name == "parallax-agent-123"


def test_container_spec_gives_aliases_for_name_container_name_and_id(settings: Settings) -> None:
    planned = plan(settings, id="agent-123", name="coder")
    assert container_spec(planned, image(), settings).aliases == (
        "coder",
        "parallax-agent-123",
        "agent-123",
    )


def test_container_spec_gives_each_alias_once(settings: Settings) -> None:
    planned = plan(settings, id="agent-123", name="agent-123")
    assert container_spec(planned, image(), settings).aliases == (
        "agent-123",
        "parallax-agent-123",
    )


def test_container_spec_carries_the_labels_and_limits(settings: Settings) -> None:
    planned = plan(settings, id="agent-123")
    spec = container_spec(planned, image(), settings)
    assert spec.labels[PREFIX + "id"] == "agent-123"
    assert (spec.memory_bytes, spec.nano_cpus, spec.pids_limit) == (
        512 * MIB,
        500_000_000,
        settings.pids_limit,
    )


def test_container_spec_is_hardened_by_default(settings: Settings) -> None:
    spec = container_spec(plan(settings), image(), settings)
    assert (spec.read_only_rootfs, spec.cap_drop_all, spec.no_new_privileges, spec.init) == (
        True,
        True,
        True,
        True,
    )


def test_container_spec_defaults_the_workdir_to_the_workspace(settings: Settings) -> None:
    assert container_spec(plan(settings), image(), settings).workdir == "/workspace"


def test_container_spec_owns_the_tmpfs_by_the_images_user(settings: Settings) -> None:
    spec = container_spec(plan(settings), image(user="1000:1000"), settings)
    assert "uid=1000" in spec.tmpfs["/home/agent"]
    assert spec.user == "1000:1000"


@pytest.mark.parametrize("user", [None, "", "root", "0", "0:0", "root:root"])
def test_container_spec_runs_a_root_image_as_the_unprivileged_user(
    settings: Settings, user: str | None
) -> None:
    spec = container_spec(plan(settings), image(user=user), settings)
    assert spec.user == "65532:65532"
    assert "uid=65532,gid=65532" in spec.tmpfs["/home/agent"]


def test_container_spec_keeps_a_root_image_as_root_when_allowed() -> None:
    allowed = load_settings(environ={"PARALLAX_ALLOW_ROOT": "true"})
    spec = container_spec(plan(allowed), image(user=None), allowed)
    assert spec.user is None
    assert "uid=0,gid=0" in spec.tmpfs["/home/agent"]


def test_container_spec_takes_log_rotation_and_grace_from_the_settings() -> None:
    settings = load_settings(
        environ={
            "PARALLAX_LOG_MAX_SIZE": "1m",
            "PARALLAX_LOG_MAX_FILES": "2",
            "PARALLAX_STOP_GRACE_S": "4.5",
        }
    )
    spec = container_spec(plan(settings), image(), settings)
    assert (spec.log_max_size, spec.log_max_files, spec.stop_timeout_s) == ("1m", 2, 4)


def test_container_spec_passes_the_network_and_command(settings: Settings) -> None:
    spec = container_spec(plan(settings, network="none", command="run it"), image(), settings)
    assert (spec.network, spec.command) == ("none", ("run", "it"))
