"""The in-memory agent registry and status derivation (parallax_docker.runtime.registry)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from parallax_docker.backends.base import ContainerState
from parallax_docker.errors import AgentNotFoundError, ConflictError
from parallax_docker.models import AgentStatus
from parallax_docker.runtime import lifecycle
from parallax_docker.runtime.agent_record import OOM_MESSAGE, AgentRecord
from parallax_docker.runtime.labels import AgentLabels
from parallax_docker.runtime.lifecycle import derive_status
from parallax_docker.runtime.registry import Registry


def labels(agent_id: str = "agent-1", name: str = "coder") -> AgentLabels:
    return AgentLabels(
        id=agent_id,
        name=name,
        type="claude",
        image="img",
        network="parallax-agents",
        memory_bytes=512 * 1024**2,
        nano_cpus=500_000_000,
        pids_limit=256,
        created_at="2026-01-01T00:00:00Z",
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
        health=None,
        created_at=None,
        started_at="2026-01-01T00:00:01Z",
        finished_at=None,
        error=None,
        networks=(),
    )
    return dataclasses.replace(base, **changes)


def exited(code: int | None, **changes: Any) -> ContainerState:
    return state(status="exited", running=False, exit_code=code, **changes)


# -- reserve ----------------------------------------------------------------------------------


def test_reserve_adds_a_pending_record_marked_as_transitioning() -> None:
    registry = Registry()
    record = registry.reserve(labels())
    assert (record.status, record.transitioning) == (AgentStatus.PENDING, True)
    assert registry.get("agent-1") is record


def test_reserve_refuses_a_taken_id() -> None:
    registry = Registry()
    registry.reserve(labels("agent-1", "a"))
    with pytest.raises(ConflictError, match="id") as info:
        registry.reserve(labels("agent-1", "b"))
    assert info.value.code == "CONFLICT"
    assert info.value.http_status == 409


def test_reserve_refuses_a_taken_name() -> None:
    registry = Registry()
    registry.reserve(labels("agent-1", "coder"))
    with pytest.raises(ConflictError, match="named 'coder'") as info:
        registry.reserve(labels("agent-2", "coder"))
    assert info.value.code == "CONFLICT"


def test_reserve_leaves_the_registry_unchanged_on_conflict() -> None:
    registry = Registry()
    registry.reserve(labels("agent-1", "coder"))
    with pytest.raises(ConflictError):
        registry.reserve(labels("agent-2", "coder"))
    assert registry.find("agent-2") is None
    assert len(registry) == 1


def test_reserve_accepts_an_id_and_name_again_after_a_drop() -> None:
    registry = Registry()
    registry.reserve(labels())
    registry.drop("agent-1")
    registry.reserve(labels())
    assert len(registry) == 1


def test_get_raises_agent_not_found_for_an_unknown_id() -> None:
    with pytest.raises(AgentNotFoundError) as info:
        Registry().get("agent-x")
    assert info.value.code == "AGENT_NOT_FOUND"


def test_find_returns_none_for_an_unknown_id() -> None:
    assert Registry().find("agent-x") is None


def test_by_container_finds_the_record_of_a_container() -> None:
    registry = Registry()
    record = registry.reserve(labels())
    record.state = state(id="c9")
    assert registry.by_container("c9") is record
    assert registry.by_container("c0") is None


def test_drop_returns_none_for_an_unknown_id() -> None:
    assert Registry().drop("agent-x") is None


# -- active_count -----------------------------------------------------------------------------


def test_active_count_counts_pending_starting_authenticating_ready_and_busy_agents() -> None:
    registry = Registry()
    for number, status in enumerate(AgentStatus):
        record = registry.reserve(labels(f"agent-{number}", f"n{number}"))
        record.status = status
    assert registry.active_count() == 5


def test_active_count_is_zero_for_an_empty_registry() -> None:
    assert Registry().active_count() == 0


# -- derive_status ----------------------------------------------------------------------------


def test_derive_status_reads_a_created_container_as_pending() -> None:
    assert derive_status(state(status="created", running=False)) == (
        AgentStatus.PENDING,
        None,
        None,
    )


def test_derive_status_reads_a_running_container_without_healthcheck_as_ready() -> None:
    assert derive_status(state()) == (AgentStatus.READY, None, None)


def test_derive_status_reads_a_healthy_container_as_ready() -> None:
    assert derive_status(state(health="healthy"))[0] == AgentStatus.READY


def test_derive_status_reads_an_unhealthy_container_as_an_error() -> None:
    status, error, code = derive_status(state(health="unhealthy"))
    assert (status, code) == (AgentStatus.ERROR, "HEALTH_CHECK_FAILED")
    assert error


def test_derive_status_reads_health_starting_as_starting() -> None:
    assert derive_status(state(health="starting"))[0] == AgentStatus.STARTING


def test_derive_status_reads_health_starting_as_ready_once_the_probe_passed() -> None:
    assert derive_status(state(health="starting"), probed_ready=True)[0] == AgentStatus.READY


def test_derive_status_still_reads_unhealthy_as_an_error_after_the_probe_passed() -> None:
    assert derive_status(state(health="unhealthy"), probed_ready=True)[0] == AgentStatus.ERROR


def test_derive_status_reads_a_running_container_being_stopped_as_stopping() -> None:
    assert derive_status(state(), stopping=True)[0] == AgentStatus.STOPPING


def test_derive_status_reads_a_container_being_removed_as_stopping() -> None:
    assert derive_status(state(status="removing", running=False))[0] == AgentStatus.STOPPING


def test_derive_status_reads_exit_code_0_as_stopped() -> None:
    assert derive_status(exited(0)) == (AgentStatus.STOPPED, None, None)


def test_derive_status_reads_exit_code_1_as_an_error() -> None:
    assert derive_status(exited(1)) == (
        AgentStatus.ERROR,
        "the agent exited with code 1",
        "AGENT_EXITED",
    )


def test_derive_status_reads_a_nonzero_exit_caused_by_a_stop_as_stopped() -> None:
    assert derive_status(exited(143), stopping=True)[0] == AgentStatus.STOPPED


def test_derive_status_reads_an_oom_kill_as_a_resource_limit_error() -> None:
    assert derive_status(exited(137, oom_killed=True)) == (
        AgentStatus.ERROR,
        OOM_MESSAGE,
        "RESOURCE_LIMIT",
    )


def test_derive_status_reads_an_oom_kill_as_an_error_even_while_stopping() -> None:
    assert derive_status(exited(137, oom_killed=True), stopping=True)[0] == AgentStatus.ERROR


def test_derive_status_reads_a_dead_container_with_a_failure_as_an_error() -> None:
    assert derive_status(state(status="dead", running=False, exit_code=1))[0] == AgentStatus.ERROR


def test_derive_status_reads_an_exit_without_a_code_as_stopped() -> None:
    assert derive_status(exited(None))[0] == AgentStatus.STOPPED


# -- lifecycle.observed ----------------------------------------------------------------------


def test_observe_derives_the_status_from_the_state() -> None:
    record = AgentRecord(labels=labels(), status=AgentStatus.READY)
    lifecycle.observed(record, exited(2))
    assert (record.status, record.error_code) == (AgentStatus.ERROR, "AGENT_EXITED")


def test_observe_keeps_the_status_while_transitioning_but_takes_the_state() -> None:
    record = AgentRecord(labels=labels(), status=AgentStatus.STARTING, transitioning=True)
    new = exited(2)
    lifecycle.observed(record, new)
    assert (record.status, record.state) == (AgentStatus.STARTING, new)


def test_observe_forgets_the_probe_result_once_the_container_stops() -> None:
    record = AgentRecord(labels=labels(), status=AgentStatus.READY, probed_ready=True)
    lifecycle.observed(record, exited(0))
    assert record.probed_ready is False


def test_observe_keeps_a_probed_agent_ready_while_docker_health_is_starting() -> None:
    record = AgentRecord(labels=labels(), status=AgentStatus.READY, probed_ready=True)
    lifecycle.observed(record, state(health="starting"))
    assert record.status == AgentStatus.READY


def test_record_handle_can_be_marked_stale() -> None:
    record = AgentRecord(labels=labels(), status=AgentStatus.READY, state=state())
    assert record.handle(stale=True).stale is True
    assert record.handle().stale is False
    assert record.container_id == "c1"


def test_handle_json_is_the_handle_and_follows_every_change() -> None:
    record = AgentRecord(labels=labels(), status=AgentStatus.READY, state=state())
    assert record.handle_json() == record.handle().model_dump_json(by_alias=True).encode()
    first = record.handle_json()
    assert record.handle_json() is first  # cached while nothing changed
    lifecycle.observed(record, state(running=False, status="exited", exit_code=3))
    assert b'"exitCode":3' in record.handle_json()
    lifecycle.restart_begun(record, automatic=True)
    assert b'"restartCount":1' in record.handle_json()
    assert b'"stale":true' in record.handle_json(stale=True)
