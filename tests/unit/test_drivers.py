"""The CLI drivers: argv building and output parsing, on recorded and constructed output."""

from __future__ import annotations

import json
from typing import Any

import pytest

from parallax_docker.runtime.drivers import driver_for
from parallax_docker.runtime.drivers.aider import AiderDriver, history_file
from parallax_docker.runtime.drivers.base import TurnOutput, find_login_url, last_json_object
from parallax_docker.runtime.drivers.claude import ClaudeDriver
from parallax_docker.runtime.drivers.codex import CodexDriver
from parallax_docker.runtime.drivers.custom import CustomDriver
from parallax_docker.runtime.drivers.gemini import GeminiDriver
from parallax_docker.runtime.drivers.wrapper import (
    KILL_SCRIPT,
    TURN_SCRIPT,
    hangup_argv,
    kill_argv,
    terminal_argv,
    turn_argv,
)

HOSTILE = 'it\'s "$(rm -rf /)" `id` ${HOME}\n--resume x -p'


def out(stdout: str | bytes = b"", stderr: str = "", exit_code: int = 0) -> TurnOutput:
    data = stdout.encode() if isinstance(stdout, str) else stdout
    return TurnOutput(stdout=data, stderr=stderr.encode(), exit_code=exit_code)


def jsonl(*events: dict[str, Any]) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


# -- choosing a driver ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent_type", "name"),
    [
        ("claude", "claude"),
        ("codex", "codex"),
        ("gemini", "gemini"),
        ("aider", "aider"),
        ("custom", "custom"),
        ("something-else", "custom"),
    ],
)
def test_each_agent_type_has_its_driver(agent_type: str, name: str) -> None:
    assert driver_for(agent_type).name == name


@pytest.mark.parametrize("agent_type", ["claude", "codex", "gemini", "aider", "custom"])
def test_the_message_travels_on_stdin_never_in_the_argv(agent_type: str) -> None:
    plan = driver_for(agent_type).plan(HOSTILE, "session-1")
    assert plan.stdin == HOSTILE.encode()
    assert not any(HOSTILE in arg or "$(rm" in arg for arg in plan.argv)


# -- claude ---------------------------------------------------------------------------------


def test_claude_runs_print_mode_with_stream_json() -> None:
    plan = ClaudeDriver().plan("hi", None)
    assert plan.argv[:5] == ("claude", "-p", "--output-format", "stream-json", "--verbose")
    assert "--resume" not in plan.argv
    assert not plan.check_credentials


def test_claude_resumes_the_kept_session() -> None:
    argv = ClaudeDriver().plan("hi", "4f1c-uuid").argv
    assert argv[argv.index("--resume") + 1] == "4f1c-uuid"


def test_claude_answer_is_the_result_with_session_cost_and_usage() -> None:
    stdout = jsonl(
        {"type": "system", "subtype": "init", "session_id": "sess-1", "tools": []},
        {
            "type": "assistant",
            "session_id": "sess-1",
            "message": {"content": [{"type": "text", "text": "Hello!"}]},
        },
        {
            "type": "result",
            "subtype": "success",
            "is_error": False,
            "result": "Hello!",
            "session_id": "sess-1",
            "total_cost_usd": 0.0123,
            "num_turns": 1,
            "usage": {"input_tokens": 3},
        },
    )
    result = ClaudeDriver().parse(out(stdout))
    assert (result.ok, result.content, result.session_id) == (True, "Hello!", "sess-1")
    assert result.metadata["costUsd"] == 0.0123
    assert result.metadata["usage"] == {"input_tokens": 3}
    assert not result.login_required


# Recorded from @anthropic-ai/claude-code 2.1.332 run without any key (abridged).
CLAUDE_NOT_LOGGED_IN = jsonl(
    {"type": "system", "subtype": "init", "session_id": "f66a", "apiKeySource": "none"},
    {
        "type": "assistant",
        "message": {
            "model": "<synthetic>",
            "content": [{"type": "text", "text": "Not logged in · Please run /login"}],
        },
        "session_id": "f66a",
        "error": "authentication_failed",
        "is_api_error_message": True,
    },
    {
        "type": "result",
        "subtype": "success",
        "is_error": True,
        "result": "Not logged in · Please run /login",
        "session_id": "f66a",
    },
)


def test_claude_without_a_key_is_login_required() -> None:
    result = ClaudeDriver().parse(out(CLAUDE_NOT_LOGGED_IN, exit_code=1))
    assert result.login_required
    assert not result.ok
    assert result.content == "Not logged in · Please run /login"
    assert result.login_url is None


def test_claude_login_url_is_picked_from_the_output() -> None:
    stdout = jsonl(
        {
            "type": "assistant",
            "error": "authentication_failed",
            "message": {
                "content": [
                    {
                        "type": "text",
                        "text": "Log in at https://claude.ai/oauth/authorize?code=true&x=1.",
                    }
                ]
            },
        }
    )
    result = ClaudeDriver().parse(out(stdout, exit_code=1))
    assert result.login_url == "https://claude.ai/oauth/authorize?code=true&x=1"


def test_claude_error_result_is_an_error_not_a_login() -> None:
    stdout = jsonl(
        {"type": "result", "is_error": True, "result": "API Error: 500", "session_id": "s"}
    )
    result = ClaudeDriver().parse(out(stdout, exit_code=1))
    assert (result.ok, result.login_required, result.content) == (False, False, "API Error: 500")


def test_claude_unknown_session_asks_for_a_fresh_turn() -> None:
    result = ClaudeDriver().parse(
        out("", "No conversation found with session ID: 4f1c", exit_code=1)
    )
    assert result.resume_failed
    assert not result.ok


def test_claude_without_any_json_reports_stderr() -> None:
    result = ClaudeDriver().parse(out("", "node: out of memory", exit_code=134))
    assert (result.ok, result.content) == (False, "node: out of memory")
    assert result.metadata["exitCode"] == 134


# -- codex ----------------------------------------------------------------------------------


def test_codex_first_turn_execs_with_json_on_stdin() -> None:
    plan = CodexDriver().plan("hi", None)
    assert plan.argv[:3] == ("codex", "exec", "--json")
    assert plan.argv[-1] == "-"
    assert "resume" not in plan.argv
    assert plan.check_credentials


def test_codex_later_turns_resume_the_thread() -> None:
    argv = CodexDriver().plan("hi", "thread-9").argv
    assert argv[:3] == ("codex", "exec", "resume")
    assert argv[-2:] == ("thread-9", "-")
    assert "--json" in argv


def test_codex_answer_is_the_last_agent_message() -> None:
    stdout = jsonl(
        {"type": "thread.started", "thread_id": "thread-9"},
        {"type": "turn.started"},
        {"type": "item.completed", "item": {"id": "i0", "type": "reasoning", "text": "hm"}},
        {"type": "item.completed", "item": {"id": "i1", "type": "agent_message", "text": "Done."}},
        {"type": "turn.completed", "usage": {"input_tokens": 10, "output_tokens": 2}},
    )
    result = CodexDriver().parse(out(stdout))
    assert (result.ok, result.content, result.session_id) == (True, "Done.", "thread-9")
    assert result.metadata["usage"]["output_tokens"] == 2


def test_codex_rejected_key_is_login_required() -> None:
    stdout = jsonl(
        {"type": "thread.started", "thread_id": "t"},
        {"type": "turn.failed", "error": {"message": "unexpected status 401 Unauthorized"}},
    )
    result = CodexDriver().parse(out(stdout, exit_code=1))
    assert result.login_required
    assert "401" in result.content


def test_codex_failed_turn_is_an_error() -> None:
    stdout = jsonl({"type": "turn.failed", "error": {"message": "context window exceeded"}})
    result = CodexDriver().parse(out(stdout, exit_code=1))
    assert (result.ok, result.login_required, result.content) == (
        False,
        False,
        "context window exceeded",
    )


def test_codex_missing_rollout_asks_for_a_fresh_turn() -> None:
    stderr = "Error: thread/resume: thread/resume failed: no rollout found for thread id x"
    assert CodexDriver().parse(out("", stderr, exit_code=1)).resume_failed


def test_the_runtimes_marker_means_login_required() -> None:
    stderr = "parallax: login required: OPENAI_API_KEY is not set (codex needs an API key)\n"
    result = CodexDriver().parse(out("", stderr, exit_code=77))
    assert result.login_required
    assert result.content.startswith("OPENAI_API_KEY is not set")


# -- gemini ---------------------------------------------------------------------------------


def test_gemini_runs_headless_json_with_the_message_on_stdin() -> None:
    plan = GeminiDriver().plan("hi", None)
    assert plan.argv[:3] == ("gemini", "--output-format", "json")
    assert "-p" not in plan.argv and "--prompt" not in plan.argv
    assert plan.check_credentials


def test_gemini_resumes_by_session_id() -> None:
    argv = GeminiDriver().plan("hi", "84158dae").argv
    assert argv[argv.index("--resume") + 1] == "84158dae"


def test_gemini_answer_is_the_response() -> None:
    body = {"session_id": "84158dae", "response": "Paris.", "stats": {"models": {}}}
    result = GeminiDriver().parse(out("Loaded cached credentials.\n" + json.dumps(body, indent=2)))
    assert (result.ok, result.content, result.session_id) == (True, "Paris.", "84158dae")
    assert result.metadata["stats"] == {"models": {}}


# Recorded from @google/gemini-cli run without any credential.
GEMINI_NO_AUTH = """{
  "session_id": "84158dae-4288-495b-9537-4263bbcdff0a",
  "error": {
    "type": "Error",
    "message": "Please set an Auth method in your /tmp/.gemini/settings.json or specify one \
of the following environment variables before running: GEMINI_API_KEY, GOOGLE_GENAI_USE_VERTEXAI",
    "code": 41
  }
}"""


def test_gemini_auth_error_is_login_required() -> None:
    result = GeminiDriver().parse(out(GEMINI_NO_AUTH, exit_code=41))
    assert result.login_required
    assert result.content.startswith("Please set an Auth method")


def test_gemini_invalid_session_asks_for_a_fresh_turn() -> None:
    body = {"error": {"type": "Error", "message": 'Invalid session identifier "x".', "code": 1}}
    assert GeminiDriver().parse(out(json.dumps(body), exit_code=1)).resume_failed


# -- aider ----------------------------------------------------------------------------------


def test_aider_takes_the_message_as_a_file_and_restores_history_later() -> None:
    first = AiderDriver().plan("hi", None)
    assert first.message_file_flag == "--message-file"
    assert "--yes-always" in first.argv and "--no-git" in first.argv
    assert "--restore-chat-history" not in first.argv
    # The driver names the session; the next turn restores that session's history file.
    assert first.session_id is not None
    assert history_file(first.session_id) in first.argv
    again = AiderDriver().plan("hi", first.session_id)
    assert "--restore-chat-history" in again.argv
    assert again.session_id == first.session_id
    assert history_file(first.session_id) in again.argv


def test_aider_answer_is_stdout_without_banner_and_costs() -> None:
    stdout = (
        "Aider v0.86.2\nMain model: claude-sonnet with diff edit format\nGit repo: none\n"
        "Repo-map: disabled\n\nThe answer is 42.\nSecond line.\n\n"
        "Tokens: 2.1k sent, 12 received. Cost: $0.01 message, $0.01 session.\n"
    )
    result = AiderDriver().parse(out(stdout))
    assert (result.ok, result.content) == (True, "The answer is 42.\nSecond line.")


def test_aider_authentication_error_is_login_required() -> None:
    stdout = "litellm.AuthenticationError: AnthropicException - invalid x-api-key\n"
    result = AiderDriver().parse(out(stdout, exit_code=1))
    assert result.login_required


# -- custom ---------------------------------------------------------------------------------


def test_custom_runs_the_images_own_turn_command() -> None:
    plan = CustomDriver().plan(HOSTILE, None)
    assert plan.argv == ()
    assert plan.message_file_flag is None


def test_custom_answer_is_stdout_exactly() -> None:
    raw = (HOSTILE + "\n\n  trailing  ").encode()
    assert CustomDriver().parse(out(raw)).content == HOSTILE + "\n\n  trailing  "


def test_custom_failure_carries_the_end_of_stderr() -> None:
    result = CustomDriver().parse(out("partial", "boom\n", exit_code=2))
    assert (result.ok, result.content) == (False, "boom")


# -- shared helpers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "url"),
    [
        (
            "visit https://auth.openai.com/oauth/authorize?client=x to log in",
            "https://auth.openai.com/oauth/authorize?client=x",
        ),
        (
            "see https://example.com/docs and https://accounts.google.com/o/oauth2/auth?x=1",
            "https://accounts.google.com/o/oauth2/auth?x=1",
        ),
        ("no link here", None),
        ("https://example.com/pricing", None),
    ],
)
def test_login_urls_are_found_only_when_they_look_like_one(text: str, url: str | None) -> None:
    assert find_login_url(text) == url


def test_last_json_object_skips_banners_and_nested_objects() -> None:
    text = 'warning {not json}\n{"a": {"b": 1}}\ntrailer'
    assert last_json_object(text) == {"a": {"b": 1}}


# -- the wrapper ----------------------------------------------------------------------------


def test_turn_argv_is_a_constant_script_with_the_cli_argv_as_parameters() -> None:
    argv = turn_argv("turn-1", ("claude", "-p"), check_credentials=True)
    assert argv[:3] == ("/bin/sh", "-c", TURN_SCRIPT)
    assert argv[3:] == ("parallax-turn", "turn-1", "1", "", "claude", "-p")


def test_turn_argv_passes_the_message_file_flag() -> None:
    argv = turn_argv("turn-1", ("aider",), message_file_flag="--message-file")
    assert argv[5:7] == ("0", "--message-file")


@pytest.mark.parametrize("turn_id", ["", "../x", "a b", "x;rm", "x" * 65])
def test_turn_ids_that_could_reach_a_path_or_a_shell_are_refused(turn_id: str) -> None:
    with pytest.raises(ValueError):
        turn_argv(turn_id, ("true",))
    with pytest.raises(ValueError):
        kill_argv(turn_id)


def test_kill_argv_names_the_turn() -> None:
    assert kill_argv("turn-7") == (
        "/bin/sh",
        "-c",
        KILL_SCRIPT,
        "parallax-kill",
        "turn",
        "turn-7",
        "TERM",
    )


def test_terminal_argv_picks_shell_or_cli_and_records_the_terminal() -> None:
    assert terminal_argv("term-1")[-2:] == ("term-1", "shell")
    assert terminal_argv("term-1", cli=True)[-2:] == ("term-1", "cli")
    with pytest.raises(ValueError):
        terminal_argv("../x")


def test_hangup_argv_sends_the_terminal_a_hangup() -> None:
    assert hangup_argv("term-1")[-3:] == ("term", "term-1", "HUP")
