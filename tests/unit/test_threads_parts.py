"""The pure parts of threads: preparing a request, reading input, reading a turn's answer and
progress, the approval presets per CLI, and a record kept and read back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError as PydanticValidationError

from parallax_docker.errors import (
    InputUnsupportedError,
    PolicyUnsupportedError,
    ValidationError,
)
from parallax_docker.runtime.drivers import driver_for
from parallax_docker.runtime.drivers.approval import supported
from parallax_docker.runtime.drivers.progress import PromptRefused, ToolRunning, progress_reader
from parallax_docker.runtime.labels import AgentLabels
from parallax_docker.runtime.threads import labels as thread_labels
from parallax_docker.runtime.threads import record
from parallax_docker.runtime.threads.input import plan_input
from parallax_docker.runtime.threads.output import (
    parse_confidence,
    strip_ansi,
    summary_of,
    usage_of,
)
from parallax_docker.runtime.threads.persist import from_json, to_json
from parallax_docker.runtime.threads.prepare import prepare, safe_relative_path
from parallax_docker.runtime.threads.spec import QueuedInput
from parallax_docker.thread_models import (
    ApprovalPreset,
    SpawnThreadRequest,
    ThreadInputRequest,
    ThreadStatus,
)


def request(**fields: Any) -> SpawnThreadRequest:
    body: dict[str, Any] = {
        "executionId": "exec-1",
        "name": "Engineer 1",
        "agentType": "claude",
        "objective": "Build it.",
    }
    body.update(fields)
    return SpawnThreadRequest.model_validate(body)


# -- preparing a spawn ----------------------------------------------------------------------------


def test_preparation_fields_win_over_the_top_level_ones() -> None:
    prepared = prepare(
        request(
            id="e-thread-0",
            workspace={"path": "/srv/top"},
            env={"A": "top"},
            approvalPreset="readonly",
            preparation={
                "workspace": {"path": "/srv/prepared", "repo": "org/repo"},
                "env": {"A": "prepared"},
                "approvalPreset": "permissive",
            },
        )
    )
    assert prepared.spec.workspace == {"path": "/srv/prepared", "repo": "org/repo"}
    assert prepared.agent.volumes == ["/srv/prepared:/workspace:rw"]
    assert prepared.agent.env["A"].get_secret_value() == "prepared"
    assert prepared.spec.approval_preset == ApprovalPreset.PERMISSIVE


def test_the_agent_keeps_the_thread_id_and_gets_the_thread_env() -> None:
    prepared = prepare(
        request(
            id="e-thread-0",
            contextFiles=[{"path": ".parallax/thread-memory.md", "content": "m"}],
            env={"PARALLAX_THREAD_ID": "spoofed", "KEY": "v"},
        )
    )
    agent = prepared.agent
    assert agent.id == agent.name == "e-thread-0" and agent.execution_id == "exec-1"
    env = {k: v.get_secret_value() for k, v in agent.env.items()}
    assert env == {
        "KEY": "v",
        "PARALLAX_THREAD_ID": "e-thread-0",
        "PARALLAX_THREAD_OBJECTIVE": "Build it.",
        "PARALLAX_THREAD_MEMORY_FILE": ".parallax/thread-memory.md",
        "PARALLAX_EXECUTION_ID": "exec-1",
        "PARALLAX_APPROVAL_PRESET": "autonomous",
    }
    assert prepared.labels[thread_labels.ID] == "e-thread-0"
    assert prepared.files == ({"path": ".parallax/thread-memory.md", "content": "m"},)


def test_a_readonly_thread_gets_its_workspace_read_only() -> None:
    prepared = prepare(request(workspace={"path": "/srv/w"}, approvalPreset="readonly"))
    assert prepared.agent.volumes == ["/srv/w:/workspace:ro"]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"agentType": "codex", "approvalPreset": "readonly"}, PolicyUnsupportedError),
        ({"policy": {"autoInterruptOnToolRunning": True}}, PolicyUnsupportedError),
        ({"policy": {"maxIdleChecks": 3}}, ValidationError),
        ({"workspace": {"repo": "org/repo"}}, ValidationError),
        ({"workspace": {"path": "relative/dir"}}, ValidationError),
        ({"workspace": {"path": "/a:b"}}, ValidationError),
        ({"contextFiles": [{"path": "../escape", "content": ""}]}, ValidationError),
        (
            {"contextFiles": [{"path": "a", "content": ""}, {"path": "a", "content": ""}]},
            ValidationError,
        ),
        ({"executionId": "not valid!"}, ValidationError),
        ({"id": "-bad"}, ValidationError),
    ],
)
def test_requests_the_runtime_cannot_keep_are_refused_with_a_code(
    fields: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        prepare(request(**fields))


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "..", "a/../../b", "./a", "a//b", "a/", "", "a\\b", "a\x00b"]
)
def test_context_file_paths_that_could_leave_the_workspace_are_refused(path: str) -> None:
    with pytest.raises(ValidationError):
        safe_relative_path(path)


def test_context_file_paths_inside_the_workspace_pass() -> None:
    assert safe_relative_path(".parallax/thread-memory.md") == ".parallax/thread-memory.md"
    assert safe_relative_path("a/b c/d..e") == "a/b c/d..e"


@pytest.mark.parametrize(
    "fields",
    [
        {"unknown": 1},
        {"workspace": {"path": "/w", "credentialsToken": "t"}},
        {"agentType": "cobol"},
        {"objective": ""},
        {"objective": "x" * (64 * 1024 + 1)},
        {"metadata": {"big": "x" * 20_000}},
        {"approvalPreset": "yolo"},
        {"policy": {"idleTimeoutMs": 10}},
    ],
)
def test_malformed_or_unknown_fields_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(PydanticValidationError):
        request(**fields)


def test_the_spec_hash_ignores_secret_values_but_not_their_names() -> None:
    one = prepare(request(id="t", env={"K": "a"})).spec.spec_hash
    assert prepare(request(id="t", env={"K": "b"})).spec.spec_hash == one
    assert prepare(request(id="t", env={"J": "a"})).spec.spec_hash != one


# -- input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "interrupt", "message"),
    [
        ({"message": "go"}, False, "go"),
        ({"raw": "\u0003"}, True, None),
        ({"raw": "\u001b"}, True, None),
        ({"keys": ["C-c"]}, True, None),
        ({"keys": ["Escape"], "message": "then this"}, True, "then this"),
        ({"raw": "fix the bug\r"}, False, "fix the bug"),
    ],
)
def test_input_maps_onto_a_message_or_an_interrupt(
    body: dict[str, Any], interrupt: bool, message: str | None
) -> None:
    plan = plan_input(ThreadInputRequest.model_validate(body))
    assert (plan.interrupt, plan.message) == (interrupt, message)


@pytest.mark.parametrize(
    "body",
    [{"keys": ["ENTER"]}, {"keys": ["y"]}, {"raw": "y"}, {"raw": "\x1b[A\r"}, {"raw": "\r"}],
)
def test_terminal_input_with_nothing_to_answer_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(InputUnsupportedError):
        plan_input(ThreadInputRequest.model_validate(body))


def test_an_empty_input_is_refused() -> None:
    with pytest.raises(ValidationError):
        plan_input(ThreadInputRequest())


# -- a turn's answer and progress ---------------------------------------------------------------


def test_confidence_is_the_last_marker_clamped() -> None:
    assert parse_confidence("CONFIDENCE: 0.8") == 0.8
    assert parse_confidence("say CONFIDENCE: 0.9 first\nconfidence: 0.42") == 0.42
    assert parse_confidence("Confidence: 7") == 1.0
    assert parse_confidence("\x1b[1mCONFIDENCE:\x1b[0m 0.5") == 0.5
    assert parse_confidence("no marker") is None


def test_terminal_sequences_are_stripped_and_the_summary_is_the_last_lines() -> None:
    assert strip_ansi("\x1b]0;title\x07\x1b[31mred\x1b[0m\r") == "red"
    assert summary_of("1\n2\n\n3\n4\n5\n6\n") == "2\n3\n4\n5\n6"
    assert summary_of("  \n") is None


def test_claude_progress_tells_tools_and_refused_permissions() -> None:
    reader = progress_reader("claude")
    assert reader is not None
    tool = {"type": "tool_use", "name": "Bash", "input": {"command": "ls"}}
    line = json.dumps({"type": "assistant", "message": {"content": [tool]}}).encode()
    # Pieces split anywhere: a line is read once it is whole.
    assert reader.feed(line[:10]) == []
    assert reader.feed(line[10:] + b"\n") == [ToolRunning("Bash", {"command": "ls"})]
    denied = {"tool_name": "Write", "tool_input": {"file_path": "a"}}
    result = json.dumps({"type": "result", "permission_denials": [denied]}).encode()
    found = reader.feed(b"noise\n" + result + b"\n")
    assert found == [PromptRefused("Write", {"file_path": "a"})]
    assert isinstance(found[0], PromptRefused) and found[0].prompt()["type"] == "permission"


def test_codex_progress_tells_commands_and_others_tell_nothing() -> None:
    reader = progress_reader("codex")
    assert reader is not None
    item = {"type": "command_execution", "command": "bash -lc ls"}
    line = json.dumps({"type": "item.started", "item": item}).encode() + b"\n"
    assert reader.feed(line) == [ToolRunning("command_execution", "bash -lc ls")]
    assert progress_reader("gemini") is None and progress_reader("custom") is None


# -- approval presets -------------------------------------------------------------------------


def test_each_cli_gets_its_own_permission_flags_for_a_preset() -> None:
    def argv(kind: str, preset: ApprovalPreset) -> tuple[str, ...]:
        return driver_for(kind).plan("m", None, preset).argv

    assert "bypassPermissions" in argv("claude", ApprovalPreset.AUTONOMOUS)
    readonly = argv("claude", ApprovalPreset.READONLY)
    assert readonly[readonly.index("--permission-mode") + 1] == "dontAsk"
    assert "Bash" in readonly[readonly.index("--disallowedTools") :]
    permissive = argv("claude", ApprovalPreset.PERMISSIVE)
    assert "Edit" in permissive and "Bash" not in permissive
    assert argv("gemini", ApprovalPreset.READONLY)[3:5] == ("--approval-mode", "plan")
    assert "--dry-run" in argv("aider", ApprovalPreset.READONLY)
    assert "--yes-always" in argv("aider", ApprovalPreset.AUTONOMOUS)
    assert "--dangerously-bypass-approvals-and-sandbox" in argv("codex", ApprovalPreset.AUTONOMOUS)
    with pytest.raises(ValueError):
        argv("codex", ApprovalPreset.STANDARD)
    assert not supported("codex", ApprovalPreset.READONLY)
    assert all(supported("claude", preset) for preset in ApprovalPreset)


# -- records kept and read back ------------------------------------------------------------------


def test_a_record_survives_the_store_as_it_was() -> None:
    prepared = prepare(request(id="t1", contextFiles=[{"path": "m.md", "content": "c"}]))
    thread = record.spawned(prepared.spec, prepared.files, 100.0)
    record.input_queued(thread, QueuedInput("next", {"k": 1}), 101.0)
    record.turn_begun(thread, "turn-1", 102.0, item=QueuedInput("now"))
    back = from_json(json.loads(json.dumps(to_json(thread))))
    assert back == thread
    assert from_json({"schema": 99}) is None


def test_a_thread_comes_back_from_its_agents_labels_alone() -> None:
    spec = prepare(request(id="t1", role="qa", approvalPreset="standard")).spec
    labels = AgentLabels.decode(
        {
            "parallax.managed": "true",
            "parallax.agent.id": "t1",
            "parallax.agent.type": "claude",
            "parallax.agent.role": "qa",
            **thread_labels.encode(spec),
        }
    )
    assert labels is not None and thread_labels.thread_of(labels) == "t1"
    back = thread_labels.decode(labels)
    assert back is not None
    assert (back.execution_id, back.name, back.role) == ("exec-1", "Engineer 1", "qa")
    assert back.approval_preset == ApprovalPreset.STANDARD
    adopted = record.adopted(back, ThreadStatus.READY, 1.0)
    assert adopted.primed and adopted.ready_sent


def test_a_turns_usage_is_the_result_shapes_when_there_is_one() -> None:
    shaped = {"inputTokens": 3, "outputTokens": 4, "costUsd": None}
    assert usage_of({"result": {"usage": shaped}, "usage": {"input_tokens": 3}}) == shaped
    assert usage_of({"usage": {"input_tokens": 3}}) == {"input_tokens": 3}
    assert usage_of({"stats": {"tokens": 1}}) == {"tokens": 1}
    assert usage_of({}) is None
