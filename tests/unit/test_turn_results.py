"""The one result shape: each driver's usage, tool calls, raw record and model-error codes (from
output the real CLIs printed against the stand-ins), the workspace changes and the shape itself.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from parallax_docker.runtime.drivers.aider import AiderDriver
from parallax_docker.runtime.drivers.base import TurnOutput, TurnResult, Usage, model_error_code
from parallax_docker.runtime.drivers.claude import ClaudeDriver
from parallax_docker.runtime.drivers.codex import CodexDriver
from parallax_docker.runtime.drivers.gemini import GeminiDriver
from parallax_docker.runtime.drivers.result import result_shape, turn_status
from parallax_docker.runtime.workspace_changes import (
    FileChange,
    WorkspaceChanges,
    parse_changes,
)


def out(stdout: str, stderr: str = "", exit_code: int = 0) -> TurnOutput:
    return TurnOutput(stdout=stdout.encode(), stderr=stderr.encode(), exit_code=exit_code)


def lines(*events: dict[str, Any]) -> str:
    return "\n".join(json.dumps(e) for e in events) + "\n"


# -- claude ---------------------------------------------------------------------------------

CLAUDE_RESULT = {
    "type": "result",
    "subtype": "success",
    "is_error": False,
    "result": "I wrote hello.txt",
    "session_id": "s-1",
    "total_cost_usd": 0.00216,
    "usage": {
        "input_tokens": 200,
        "cache_creation_input_tokens": 30,
        "cache_read_input_tokens": 10,
        "output_tokens": 60,
    },
}


def test_claude_reports_usage_cost_tool_calls_and_its_result_event() -> None:
    tool_use = {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}}
    stdout = lines(
        {"type": "system", "subtype": "init", "session_id": "s-1"},
        {"type": "assistant", "message": {"content": [tool_use]}, "session_id": "s-1"},
        {"type": "user", "message": {"content": [{"type": "tool_result"}]}},
        {"type": "assistant", "message": {"content": [{"type": "text", "text": "done"}]}},
        CLAUDE_RESULT,
    )
    result = ClaudeDriver().parse(out(stdout))
    assert result.ok and result.content == "I wrote hello.txt"
    assert result.usage == Usage(input_tokens=240, output_tokens=60, cost_usd=0.00216)
    assert result.tool_calls == ("Bash",)
    assert result.raw == CLAUDE_RESULT


@pytest.mark.parametrize(
    ("status", "code"), [(429, "MODEL_RATE_LIMITED"), (500, "MODEL_ERROR"), (None, "MODEL_ERROR")]
)
def test_claude_model_failure_has_a_code(status: int | None, code: str) -> None:
    failed = {
        **CLAUDE_RESULT,
        "is_error": True,
        "result": "API Error: ...",
        "terminal_reason": "api_error",
    }
    if status is not None:
        failed["api_error_status"] = status
    result = ClaudeDriver().parse(out(lines(failed), exit_code=1))
    assert not result.ok
    assert result.metadata["code"] == code
    assert result.metadata.get("modelStatus") == status


# -- codex ----------------------------------------------------------------------------------


def test_codex_reports_usage_and_each_tool_item() -> None:
    command = {"id": "i0", "type": "command_execution", "command": "ls", "exit_code": 0}
    mcp = {"id": "i1", "type": "mcp_tool_call", "server": "docs", "tool": "search"}
    completed = {
        "type": "turn.completed",
        "usage": {"input_tokens": 240, "cached_input_tokens": 0, "output_tokens": 60},
    }
    stdout = lines(
        {"type": "thread.started", "thread_id": "th-1"},
        {"type": "item.completed", "item": command},
        {"type": "item.completed", "item": mcp},
        {"type": "item.completed", "item": {"id": "i2", "type": "reasoning", "text": "hm"}},
        {"type": "item.completed", "item": {"id": "i3", "type": "agent_message", "text": "ok"}},
        completed,
    )
    result = CodexDriver().parse(out(stdout))
    assert result.ok and result.content == "ok" and result.session_id == "th-1"
    assert result.usage == Usage(input_tokens=240, output_tokens=60)
    assert result.tool_calls == ("command_execution", "mcp:docs/search")
    assert result.raw == completed


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("exceeded retry limit, last status: 429 Too Many Requests", "MODEL_RATE_LIMITED"),
        (
            "We\u2019re currently experiencing high demand, which may cause temporary errors.",
            "MODEL_ERROR",
        ),
        (
            "stream disconnected before completion: stream closed before response.completed",
            "MODEL_ERROR",
        ),
    ],
)
def test_codex_failed_turn_is_a_model_error(message: str, code: str) -> None:
    failed = {"type": "turn.failed", "error": {"message": message}}
    stdout = lines({"type": "thread.started", "thread_id": "th-1"}, failed)
    result = CodexDriver().parse(out(stdout, exit_code=1))
    assert (result.ok, result.content, result.metadata["code"]) == (False, message, code)
    assert result.raw == failed


# -- gemini ---------------------------------------------------------------------------------

GEMINI_STATS = {
    "models": {
        "gemini-flash-lite": {"tokens": {"input": 120, "prompt": 120, "candidates": 30}},
        "gemini-flash": {"tokens": {"input": 240, "prompt": 240, "candidates": 60}},
    },
    "tools": {"totalCalls": 3, "byName": {"write_file": {"count": 1}, "read_file": {"count": 2}}},
}


def test_gemini_sums_the_models_tokens_and_lists_its_tool_calls() -> None:
    body = {"session_id": "g-1", "response": "I wrote hello.txt", "stats": GEMINI_STATS}
    result = GeminiDriver().parse(out("YOLO mode is enabled.\n" + json.dumps(body)))
    assert result.ok and result.session_id == "g-1"
    assert result.usage == Usage(input_tokens=360, output_tokens=90)
    assert result.tool_calls == ("read_file", "read_file", "write_file")
    assert result.raw == body


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            {"type": "Error", "message": "Resource has been exhausted", "code": 429},
            "MODEL_RATE_LIMITED",
        ),
        ({"type": "Error", "message": '{"error":{"code":500}}', "code": 500}, "MODEL_ERROR"),
        (
            {
                "type": "Error",
                "message": "Expected property name or '}' in JSON at position 1",
                "code": 1,
            },
            "MODEL_ERROR",
        ),
    ],
)
def test_gemini_model_failure_has_a_code(error: dict[str, Any], code: str) -> None:
    body = {"session_id": "g-1", "error": error}
    result = GeminiDriver().parse(out(json.dumps(body), exit_code=1))
    assert not result.ok and not result.login_required
    assert result.metadata["code"] == code


def test_gemini_other_failures_keep_no_model_code() -> None:
    body = {"session_id": "g-1", "error": {"type": "Error", "message": "disk full", "code": 1}}
    assert "code" not in GeminiDriver().parse(out(json.dumps(body), exit_code=1)).metadata


# -- aider ----------------------------------------------------------------------------------

AIDER_EDIT = (
    "Aider v0.86.2\nMain model: gpt-4o with diff edit format\nWeak model: gpt-4o-mini\n"
    "Git repo: none\nRepo-map: disabled\n\nHere is the file.\n\nhello.txt\n```\n<<<<<<< SEARCH\n"
    "=======\nhello\n>>>>>>> REPLACE\n```\n\n"
    "Tokens: 1.2k sent, 30 received. Cost: $0.00060 message, $0.00060 session.\n\n"
    "hello.txt\nApplied edit to hello.txt\n"
)


def test_aider_answer_usage_and_edits() -> None:
    result = AiderDriver().parse(out(AIDER_EDIT))
    assert result.ok
    assert result.content.startswith("Here is the file.") and "Applied edit" not in result.content
    assert result.content.endswith(">>>>>>> REPLACE\n```")
    assert result.usage == Usage(input_tokens=1200, output_tokens=30, cost_usd=0.0006)
    assert result.tool_calls == ("edit",)
    assert result.raw.startswith("Tokens: 1.2k sent")


def test_aider_model_failure_after_its_retries_is_a_model_error() -> None:
    stdout = (
        "Aider v0.86.2\n\nlitellm.RateLimitError: RateLimitError: OpenAIException - Rate limit\n"
        "reached for requests\nThe API provider has rate limited you.\nRetrying in 0.2 seconds...\n"
        "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached for\n"
        "requests\nThe API provider has rate limited you. Try again later or check your quotas.\n"
    )
    result = AiderDriver().parse(out(stdout))
    assert not result.ok and result.metadata["code"] == "MODEL_RATE_LIMITED"
    assert result.content.startswith("litellm.RateLimitError")
    assert "Try again later" in result.content
    stdout = "litellm.InternalServerError: InternalServerError: OpenAIException - boom\n"
    assert AiderDriver().parse(out(stdout)).metadata["code"] == "MODEL_ERROR"


def test_aider_retry_that_then_succeeds_is_an_answer() -> None:
    stdout = "litellm.InternalServerError: boom\nRetrying in 0.2 seconds...\n" + AIDER_EDIT
    assert AiderDriver().parse(out(stdout)).ok


def test_model_error_code_reads_rate_limits() -> None:
    assert model_error_code("HTTP 429") == "MODEL_RATE_LIMITED"
    assert model_error_code("Quota exceeded for project") == "MODEL_RATE_LIMITED"
    assert model_error_code("upstream connect error") == "MODEL_ERROR"


# -- workspace changes ----------------------------------------------------------------------


def record(
    path: str, mtime: str = "1.5", size: int = 3, inode: int = 7, after: bool = False
) -> bytes:
    return (b"\t" if after else b"") + f"{mtime} {size} {inode} {path}".encode()


def test_changes_are_added_modified_and_deleted_paths() -> None:
    output = b"\0".join(
        [
            b"ok",
            record("gone.txt"),
            record("edited.txt", mtime="1.5"),
            record("edited.txt", mtime="2.5", after=True),
            record("dir/new file\nwith newline", after=True),
        ]
    )
    changes = parse_changes(output + b"\0")
    assert changes == WorkspaceChanges(
        (
            FileChange("/workspace/dir/new file\nwith newline", "added"),
            FileChange("/workspace/edited.txt", "modified"),
            FileChange("/workspace/gone.txt", "deleted"),
        )
    )


def test_no_listing_is_unknown_not_empty() -> None:
    assert parse_changes(b"") is None
    assert parse_changes(b"ok\0") == WorkspaceChanges(())
    assert parse_changes(b"ok\0truncated\0").truncated  # type: ignore[union-attr]


# -- the shape ------------------------------------------------------------------------------


def test_the_shape_has_every_field_whatever_the_cli_reported() -> None:
    bare = TurnResult(content="hi")
    shape = result_shape(bare, status="completed", session_id=None, duration_ms=5, changes=None)
    assert shape == {
        "content": "hi",
        "status": "completed",
        "usage": {"inputTokens": None, "outputTokens": None, "costUsd": None},
        "toolCalls": {"count": 0, "names": []},
        "filesChanged": None,
        "filesChangedTruncated": False,
        "sessionId": None,
        "durationMs": 5,
        "raw": None,
    }
    full = TurnResult(
        content="x",
        usage=Usage(1, 2, 0.5),
        tool_calls=("Write", "Bash", "Bash"),
        raw={"type": "result"},
    )
    changes = WorkspaceChanges((FileChange("/workspace/a", "added"),), truncated=True)
    shape = result_shape(full, status="completed", session_id="s", duration_ms=9, changes=changes)
    assert shape["toolCalls"] == {"count": 3, "names": ["Bash", "Write"]}
    assert shape["filesChanged"] == [{"path": "/workspace/a", "change": "added"}]
    assert shape["filesChangedTruncated"] is True
    assert shape["usage"] == {"inputTokens": 1, "outputTokens": 2, "costUsd": 0.5}


def test_status_is_completed_failed_interrupted_or_login_required() -> None:
    assert turn_status(TurnResult("a"), interrupted=False) == "completed"
    assert turn_status(TurnResult("a", ok=False), interrupted=False) == "failed"
    assert turn_status(TurnResult("a", ok=False), interrupted=True) == "interrupted"
    login = TurnResult("a", ok=False, login_required=True)
    assert turn_status(login, interrupted=False) == "login_required"
