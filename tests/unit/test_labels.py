"""Container labels that rebuild an agent handle (parallax_docker.runtime.labels)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parallax_docker.backends.base import ContainerState
from parallax_docker.models import AgentStatus
from parallax_docker.runtime.labels import MANAGED, PREFIX, AgentLabels, container_name

MIB = 1024**2

FULL = AgentLabels(
    id="agent-1",
    name="coder",
    type="claude",
    image="parallax/agent-claude:latest",
    network="parallax-agents",
    memory_bytes=512 * MIB,
    nano_cpus=500_000_000,
    pids_limit=256,
    created_at="2026-01-01T00:00:00.000+00:00",
    role="engineer",
    reports_to="lead",
    capabilities=("code", "review"),
    volumes=("/srv/p:/workspace/p:ro",),
    env_keys=("ANTHROPIC_API_KEY", "FOO"),
    workdir="/workspace/p",
    execution_id="exec-9",
    auto_restart=True,
    idle_timeout=600,
    timeout=3600,
    user_labels=(("team", "a"), ("tier", "gold")),
    spec_hash="0123456789abcdef",
)
MINIMAL = AgentLabels(
    id="agent-2",
    name="agent-2",
    type="custom",
    image="img",
    network="none",
    memory_bytes=6 * MIB,
    nano_cpus=10_000_000,
    pids_limit=16,
    created_at="",
)


def state(**changes: Any) -> ContainerState:
    base = ContainerState(
        id="c1",
        name="parallax-agent-1",
        image="img",
        labels={},
        status="running",
        running=True,
        exit_code=None,
        oom_killed=False,
        health="healthy",
        created_at="2026-01-01T00:00:00Z",
        started_at="2026-01-01T00:00:01Z",
        finished_at=None,
        error=None,
        networks=("parallax-agents",),
    )
    return dataclasses.replace(base, **changes)


def test_container_name_prefixes_the_agent_id() -> None:
    assert container_name("agent-123") == "parallax-agent-123"


@pytest.mark.parametrize("labels", [FULL, MINIMAL])
def test_decode_reverses_encode(labels: AgentLabels) -> None:
    assert AgentLabels.decode(labels.encode()) == labels


@given(
    role=st.none() | st.text(max_size=20),
    capabilities=st.lists(st.text(max_size=10), max_size=4).map(tuple),
    env_keys=st.lists(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True), max_size=4).map(
        tuple
    ),
    idle_timeout=st.none() | st.integers(min_value=0, max_value=10**6),
    auto_restart=st.booleans(),
    user_labels=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9.-]{0,8}", fullmatch=True).filter(
            lambda k: not k.startswith("parallax.")
        ),
        st.text(max_size=10),
        max_size=3,
    ).map(lambda d: tuple(d.items())),
)
def test_decode_reverses_encode_for_any_field_values(
    role: str | None,
    capabilities: tuple[str, ...],
    env_keys: tuple[str, ...],
    idle_timeout: int | None,
    auto_restart: bool,
    user_labels: tuple[tuple[str, str], ...],
) -> None:
    labels = dataclasses.replace(
        FULL,
        role=role,
        capabilities=capabilities,
        env_keys=env_keys,
        idle_timeout=idle_timeout,
        auto_restart=auto_restart,
        user_labels=user_labels,
    )
    assert AgentLabels.decode(labels.encode()) == labels


def test_encode_marks_the_container_as_managed() -> None:
    assert FULL.encode()[MANAGED] == "true"


def test_encode_writes_every_value_as_a_string() -> None:
    assert all(isinstance(v, str) for v in FULL.encode().values())


def test_encode_keeps_user_labels_next_to_the_runtimes_own() -> None:
    encoded = FULL.encode()
    assert (encoded["team"], encoded["tier"]) == ("a", "gold")


def test_encode_leaves_out_optional_fields_that_are_unset() -> None:
    encoded = MINIMAL.encode()
    for key in ("role", "reports-to", "workdir", "execution-id", "idle-timeout", "timeout"):
        assert PREFIX + key not in encoded


def test_encode_never_lets_a_user_label_override_the_managed_marker() -> None:
    labels = dataclasses.replace(MINIMAL, user_labels=((PREFIX + "id", "evil"),))
    assert labels.encode()[PREFIX + "id"] == "agent-2"


def test_decode_keeps_only_the_user_labels_that_were_listed() -> None:
    encoded = FULL.encode()
    encoded["com.docker.compose.project"] = "other"
    decoded = AgentLabels.decode(encoded)
    assert decoded is not None
    assert decoded.user_labels == (("team", "a"), ("tier", "gold"))


def test_decode_returns_none_for_an_unmanaged_container() -> None:
    assert AgentLabels.decode({"com.example": "x"}) is None


def test_decode_returns_none_when_the_managed_marker_is_not_true() -> None:
    encoded = FULL.encode()
    encoded[MANAGED] = "false"
    assert AgentLabels.decode(encoded) is None


def test_decode_returns_none_without_an_agent_id() -> None:
    encoded = FULL.encode()
    del encoded[PREFIX + "id"]
    assert AgentLabels.decode(encoded) is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("memory", "lots"),
        ("cpu", "1.5"),
        ("pids", ""),
        ("capabilities", "not json"),
        ("capabilities", "42"),
        ("volumes", "{"),
        ("env-keys", "null"),
        ("user-labels", "null"),
        ("idle-timeout", "soon"),
        ("timeout", "1h"),
    ],
)
def test_decode_returns_none_for_damaged_labels(key: str, value: str) -> None:
    encoded = FULL.encode()
    encoded[PREFIX + key] = value
    assert AgentLabels.decode(encoded) is None


def test_decode_fills_defaults_for_labels_an_older_writer_left_out() -> None:
    decoded = AgentLabels.decode({MANAGED: "true", PREFIX + "id": "agent-old"})
    assert decoded is not None
    assert (decoded.name, decoded.type, decoded.memory_bytes, decoded.capabilities) == (
        "agent-old",
        "custom",
        0,
        (),
    )


def test_handle_shows_the_labels_facts() -> None:
    handle = FULL.handle(AgentStatus.READY)
    assert (handle.id, handle.name, handle.type, handle.status) == (
        "agent-1",
        "coder",
        "claude",
        AgentStatus.READY,
    )
    assert (handle.container_name, handle.image, handle.network) == (
        "parallax-agent-1",
        "parallax/agent-claude:latest",
        "parallax-agents",
    )
    assert (handle.role, handle.reports_to, handle.capabilities) == (
        "engineer",
        "lead",
        ["code", "review"],
    )
    assert (handle.volumes, handle.env_keys, handle.labels) == (
        ["/srv/p:/workspace/p:ro"],
        ["ANTHROPIC_API_KEY", "FOO"],
        {"team": "a", "tier": "gold"},
    )
    assert (handle.workdir, handle.execution_id, handle.auto_restart, handle.idle_timeout) == (
        "/workspace/p",
        "exec-9",
        True,
        600,
    )


def test_handle_shows_the_applied_resources() -> None:
    resources = FULL.handle(AgentStatus.READY).resources
    assert (resources.memory, resources.memory_bytes) == ("512m", 512 * MIB)
    assert (resources.cpu, resources.nano_cpus) == (0.5, 500_000_000)
    assert (resources.pids_limit, resources.timeout) == (256, 3600)


def test_handle_without_a_state_has_no_container_facts() -> None:
    handle = FULL.handle(AgentStatus.PENDING)
    assert (handle.container_id, handle.started_at, handle.exit_code, handle.health) == (
        None,
        None,
        None,
        None,
    )


def test_handle_takes_container_facts_from_the_state() -> None:
    handle = FULL.handle(AgentStatus.READY, state())
    assert (handle.container_id, handle.started_at, handle.health) == (
        "c1",
        "2026-01-01T00:00:01Z",
        "healthy",
    )
    assert handle.finished_at is None


def test_handle_shows_exit_code_and_finish_time_of_a_stopped_container() -> None:
    exited = state(status="exited", running=False, exit_code=2, finished_at="2026-01-01T00:01:00Z")
    handle = FULL.handle(AgentStatus.ERROR, exited, error="the agent exited with code 2")
    assert (handle.exit_code, handle.finished_at, handle.error) == (
        2,
        "2026-01-01T00:01:00Z",
        "the agent exited with code 2",
    )


def test_handle_carries_the_error_code() -> None:
    handle = FULL.handle(AgentStatus.ERROR, error="out of memory", error_code="RESOURCE_LIMIT")
    assert handle.error_code == "RESOURCE_LIMIT"


def test_handle_serialises_with_the_control_planes_field_names() -> None:
    body = FULL.handle(AgentStatus.READY).model_dump(mode="json")
    assert {"containerName", "envKeys", "reportsTo", "executionId", "autoRestart"} <= set(body)
    assert body["resources"]["memoryBytes"] == 512 * MIB
