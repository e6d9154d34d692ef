"""The agent state machine: each named transition, the status it leaves and the events it means."""

from __future__ import annotations

from dataclasses import replace

from parallax_docker.models import AgentStatus
from parallax_docker.runtime import lifecycle
from parallax_docker.runtime.agent_record import AgentRecord
from parallax_docker.runtime.events import AgentEvent
from parallax_docker.runtime.labels import AgentLabels
from tests.unit.fakes import exited_state, running_state

CID = "c" * 64


def labels(agent_id: str = "agent-1") -> AgentLabels:
    return AgentLabels(
        id=agent_id,
        name="n",
        type="custom",
        image="img",
        network="net",
        memory_bytes=1 << 26,
        nano_cpus=10**8,
        pids_limit=512,
        created_at="2026-01-01T00:00:00Z",
    )


def names(events: list[AgentEvent]) -> list[str]:
    return [e.event for e in events]


def ready_record() -> AgentRecord:
    record = lifecycle.spawn_begun(labels())
    lifecycle.became_ready(record, running_state(CID, labels().encode()))
    return record


def test_a_spawn_begins_pending_unsettled_and_in_operation() -> None:
    record = lifecycle.spawn_begun(labels())
    assert record.status == AgentStatus.PENDING
    assert record.in_operation and not record.settled.is_set()


def test_a_started_container_reads_as_starting_and_says_so() -> None:
    record = lifecycle.spawn_begun(labels())
    assert names(lifecycle.container_started(record)) == ["agent_started"]
    assert record.status == AgentStatus.STARTING


def test_becoming_ready_settles_the_spawn_and_reports_ready() -> None:
    record = lifecycle.spawn_begun(labels())
    events = lifecycle.became_ready(record, running_state(CID, {}))
    assert names(events) == ["agent_ready"]
    assert record.status == AgentStatus.READY
    assert record.settled.is_set() and not record.in_operation and record.probed_ready
    assert events[0].data["agent"]["status"] == "ready"


def test_engine_states_during_a_spawn_change_the_state_not_the_status() -> None:
    record = lifecycle.spawn_begun(labels())
    events = lifecycle.observed(record, exited_state(running_state(CID, {}), 1))
    assert events == []
    assert record.status == AgentStatus.PENDING
    assert record.state is not None and record.state.exit_code == 1


def test_a_crash_seen_on_the_engine_is_an_error_event() -> None:
    record = ready_record()
    events = lifecycle.observed(record, exited_state(running_state(CID, {}), 2))
    assert names(events) == ["agent_error"]
    assert record.status == AgentStatus.ERROR and record.error_code == "AGENT_EXITED"


def test_a_clean_exit_is_a_stop_with_its_exit_code() -> None:
    record = ready_record()
    events = lifecycle.observed(record, exited_state(running_state(CID, {}), 0))
    assert names(events) == ["agent_stopped"]
    assert events[0].data["reason"] == "exited" and events[0].data["exitCode"] == 0


def test_an_oom_kill_is_a_resource_limit_error() -> None:
    record = ready_record()
    lifecycle.observed(record, replace(exited_state(running_state(CID, {}), 137), oom_killed=True))
    assert record.error_code == "RESOURCE_LIMIT"


def test_an_exit_the_runtime_causes_is_not_reported_by_observation() -> None:
    record = ready_record()
    lifecycle.stop_begun(record)
    assert lifecycle.observed(record, exited_state(running_state(CID, {}), 137)) == []
    assert record.status == AgentStatus.STOPPED


def test_a_stop_reports_its_reason_and_exit_code() -> None:
    record = ready_record()
    lifecycle.stop_begun(record)
    assert record.status == AgentStatus.STOPPING
    events = lifecycle.stopped(record, exited_state(running_state(CID, {}), 143), "deleted")
    assert names(events) == ["agent_stopped"]
    assert events[0].data["reason"] == "deleted" and events[0].data["exitCode"] == 143


def test_a_failed_stop_gives_the_agent_back_its_observed_status() -> None:
    record = ready_record()
    lifecycle.stop_begun(record)
    lifecycle.stop_failed(record, running_state(CID, {}))
    assert not record.stopping and record.status == AgentStatus.READY


def test_a_turn_makes_a_ready_agent_busy_and_its_end_ready_again() -> None:
    record = ready_record()
    assert names(lifecycle.turn_started(record)) == ["agent_busy"]
    assert record.status == AgentStatus.BUSY
    assert names(lifecycle.turn_ended(record, ok=True)) == ["agent_ready"]
    assert record.handle().status == AgentStatus.READY and not record.busy


def test_a_busy_agent_stays_busy_when_the_engine_reports_it_running() -> None:
    record = ready_record()
    lifecycle.turn_started(record)
    assert lifecycle.observed(record, running_state(CID, {})) == []
    assert record.status == AgentStatus.BUSY


def test_a_login_prompt_makes_the_agent_authenticating_until_a_turn_gets_through() -> None:
    record = ready_record()
    lifecycle.turn_started(record)
    events = lifecycle.turn_ended(
        record, ok=False, login_required=True, login_url="https://x/login"
    )
    assert names(events) == ["login_required"] and events[0].data["loginUrl"] == "https://x/login"
    assert record.status == AgentStatus.AUTHENTICATING
    lifecycle.turn_started(record)
    lifecycle.turn_ended(record, ok=True)
    assert record.handle().status == AgentStatus.READY


def test_a_turn_cut_short_leaves_the_login_state_as_it_was() -> None:
    record = ready_record()
    lifecycle.turn_started(record)
    lifecycle.turn_ended(record, ok=False, login_required=True)
    lifecycle.turn_started(record)
    lifecycle.turn_ended(record, ok=None)
    assert record.status == AgentStatus.AUTHENTICATING


def test_an_automatic_restart_counts_and_a_failed_one_reports_what_the_engine_shows() -> None:
    record = ready_record()
    lifecycle.restart_begun(record, automatic=True)
    assert record.restart_count == 1 and len(record.restart_times) == 1
    assert record.status == AgentStatus.STARTING and not record.settled.is_set()
    events = lifecycle.bring_back_failed(record, exited_state(running_state(CID, {}), 3))
    assert names(events) == ["agent_error"] and record.settled.is_set()


def test_a_manual_restart_does_not_count_as_a_crash_restart() -> None:
    record = ready_record()
    lifecycle.restart_begun(record, automatic=False)
    assert record.restart_count == 0


def test_the_probe_confirms_an_agent_docker_still_calls_starting() -> None:
    record = lifecycle.adopted(labels())
    lifecycle.observed(record, replace(running_state(CID, {}), health="starting"))
    assert record.status == AgentStatus.STARTING
    assert names(lifecycle.probe_passed(record)) == ["agent_ready"]
    assert record.handle().health == "healthy"


def test_a_vanished_live_agent_is_reported_once_and_an_exited_one_not_again() -> None:
    record = ready_record()
    assert names(lifecycle.vanished(record)) == ["agent_stopped"]
    lifecycle.observed(record, exited_state(running_state(CID, {}), 1))
    assert lifecycle.vanished(record) == []


def test_recovery_that_removes_a_spawn_says_why() -> None:
    record = lifecycle.adopted(labels())
    lifecycle.recovery_begun(record)
    assert record.in_operation and not record.settled.is_set()
    events = lifecycle.recovered_away(record, "spawn_interrupted", "it never became ready")
    assert names(events) == ["agent_stopped"]
    assert events[0].data["reason"] == "spawn_interrupted"
    assert events[0].data["error"] == "it never became ready"
    assert record.settled.is_set()


def test_the_cached_handle_json_follows_every_change_it_shows() -> None:
    record = ready_record()
    first = record.handle_json()
    assert record.handle_json() is first
    lifecycle.turn_started(record)
    assert b'"busy"' in record.handle_json()
    assert b'"stale":true' in record.handle_json(stale=True)
