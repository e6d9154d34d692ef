"""Codex: ``codex exec --json -`` (the message on stdin); later turns ``codex exec resume <id>``.

The output is JSON lines: ``thread.started`` names the thread (the session to resume),
``item.completed`` items of type ``agent_message`` carry the answer (items of the other types,
``command_execution``, ``file_change``, ``mcp_tool_call``, ``web_search``, are the tools it ran),
``turn.completed`` the usage, and ``turn.failed``/``error`` what went wrong (a ``turn.failed``
after codex's retries is the model service's failure). Codex keeps retrying a request it cannot
make, so a missing key is refused before it starts (the turn wrapper's credential check).
"""

from __future__ import annotations

from typing import Any

from parallax_docker.runtime.drivers.approval import codex_flags
from parallax_docker.runtime.drivers.base import (
    TurnOutput,
    TurnPlan,
    TurnResult,
    Usage,
    as_int,
    base_metadata,
    error_text,
    find_login_url,
    json_lines,
    marker_login,
    model_error_code,
)
from parallax_docker.thread_models import ApprovalPreset

# The container is the sandbox; codex's own sandbox (bubblewrap) and its approval prompts cannot
# work unattended inside it (drivers/approval.py).
_COMMON = ("--json", "--skip-git-repo-check")
_AUTH_HINTS = ("401", "unauthorized", "invalid_api_key", "incorrect api key", "not logged in")
# Completed items that are a tool the model ran (the rest are its messages and reasoning).
_TOOL_ITEMS = frozenset({"command_execution", "file_change", "mcp_tool_call", "web_search"})


class CodexDriver:
    name = "codex"

    def plan(
        self,
        message: str,
        session_id: str | None,
        preset: ApprovalPreset = ApprovalPreset.AUTONOMOUS,
    ) -> TurnPlan:
        flags = (*_COMMON, *codex_flags(preset))
        if session_id:
            argv: tuple[str, ...] = ("codex", "exec", "resume", *flags, session_id, "-")
        else:
            argv = ("codex", "exec", *flags, "-")
        return TurnPlan(argv=argv, stdin=message.encode(), check_credentials=True)

    def parse(self, output: TurnOutput) -> TurnResult:
        thread: str | None = None
        answers: list[str] = []
        failure: str | None = None
        errors: list[str] = []
        usage: Any = None
        tools: list[str] = []
        final: dict[str, Any] | None = None
        for event in json_lines(output.stdout_text):
            kind = event.get("type")
            if kind == "thread.started" and isinstance(event.get("thread_id"), str):
                thread = event["thread_id"]
            elif kind == "item.completed":
                item = event.get("item")
                item_type = item.get("type") if isinstance(item, dict) else None
                if isinstance(item, dict) and item_type == "agent_message":
                    answers.append(str(item.get("text", "")))
                elif isinstance(item, dict) and item_type in _TOOL_ITEMS:
                    tools.append(_tool_name(item))
            elif kind == "turn.completed":
                usage = event.get("usage")
                final = event
            elif kind == "turn.failed":
                error = event.get("error")
                failure = str(error.get("message")) if isinstance(error, dict) else "turn failed"
                final = event
            elif kind == "error" and isinstance(event.get("message"), str):
                errors.append(event["message"])
        metadata = base_metadata(output)
        if thread:
            metadata["sessionId"] = thread
        if usage is not None:
            metadata["usage"] = usage
        marker = marker_login(output)
        problem = failure or (errors[-1] if errors and not answers else None)
        if marker is not None or (problem and _is_auth(problem)):
            text = f"{problem or ''}\n{output.stderr_text}"
            return TurnResult(
                content=marker or problem or "codex needs a login",
                ok=False,
                session_id=thread,
                login_required=True,
                login_url=find_login_url(text),
                metadata=metadata,
            )
        if answers and failure is None and output.exit_code == 0:
            return TurnResult(
                content=answers[-1],
                session_id=thread,
                metadata=metadata,
                usage=_usage(usage),
                tool_calls=tuple(tools),
                raw=final,
            )
        if failure is not None:
            metadata["code"] = model_error_code(failure)
        stderr = output.stderr_text
        return TurnResult(
            content=problem or error_text(output, f"codex exited with code {output.exit_code}"),
            ok=False,
            session_id=thread,
            resume_failed="no rollout found" in stderr.lower(),
            metadata=metadata,
            usage=_usage(usage),
            tool_calls=tuple(tools),
            raw=final,
        )


def _tool_name(item: dict[str, Any]) -> str:
    if item.get("type") == "mcp_tool_call" and item.get("tool"):
        return f"mcp:{item.get('server', '')}/{item['tool']}"
    return str(item["type"])


def _usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    # OpenAI's input_tokens already include the cached ones.
    return Usage(
        input_tokens=as_int(usage.get("input_tokens")),
        output_tokens=as_int(usage.get("output_tokens")),
    )


def _is_auth(text: str) -> bool:
    lowered = text.lower()
    return any(hint in lowered for hint in _AUTH_HINTS)
