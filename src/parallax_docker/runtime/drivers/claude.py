"""Claude Code: ``claude -p --output-format stream-json --verbose``, the message on stdin.

Every line of the output is a JSON event. The ``system``/``init`` event (and every later one)
carries the ``session_id`` that the next turn passes to ``--resume``; ``assistant`` events carry
the model's content blocks (``tool_use`` blocks name the tools it ran); the closing ``result``
event carries the answer (``result``), ``is_error``, the cost and the usage, and, when the model
service failed after claude's retries, ``api_error_status``. A missing or rejected key shows as
an ``assistant`` event with ``error: "authentication_failed"``.
"""

from __future__ import annotations

from typing import Any

from parallax_docker.runtime.drivers.approval import claude_flags
from parallax_docker.runtime.drivers.base import (
    MODEL_ERROR,
    MODEL_RATE_LIMITED,
    TurnOutput,
    TurnPlan,
    TurnResult,
    Usage,
    as_float,
    as_int,
    base_metadata,
    error_text,
    find_login_url,
    json_lines,
    marker_login,
)
from parallax_docker.thread_models import ApprovalPreset

_AUTH_ERRORS = frozenset({"authentication_failed", "oauth_org_not_allowed"})


class ClaudeDriver:
    name = "claude"

    def plan(
        self,
        message: str,
        session_id: str | None,
        preset: ApprovalPreset = ApprovalPreset.AUTONOMOUS,
    ) -> TurnPlan:
        argv: list[str] = [
            "claude",
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            *claude_flags(preset),
        ]
        if session_id:
            argv += ["--resume", session_id]
        return TurnPlan(argv=tuple(argv), stdin=message.encode())

    def parse(self, output: TurnOutput) -> TurnResult:
        session_id: str | None = None
        result: dict[str, Any] | None = None
        auth_error: str | None = None
        texts: list[str] = []
        tools: list[str] = []
        for event in json_lines(output.stdout_text):
            if isinstance(event.get("session_id"), str):
                session_id = event["session_id"]
            kind = event.get("type")
            if kind == "result":
                result = event
            elif kind == "assistant":
                if event.get("error") in _AUTH_ERRORS:
                    auth_error = str(event["error"])
                texts.extend(_texts(event.get("message")))
                tools.extend(_tool_names(event.get("message")))
        metadata = base_metadata(output)
        if session_id:
            metadata["sessionId"] = session_id
        marker = marker_login(output)
        if auth_error is not None or marker is not None:
            message = (result or {}).get("result") or " ".join(texts) or marker or auth_error
            text = f"{message}\n{output.stderr_text}"
            return TurnResult(
                content=str(message),
                ok=False,
                session_id=session_id,
                login_required=True,
                login_url=find_login_url(text),
                metadata=metadata,
            )
        if result is None:
            stderr = output.stderr_text
            return TurnResult(
                content=error_text(output, f"claude exited with code {output.exit_code}"),
                ok=False,
                resume_failed="No conversation found" in stderr,
                metadata=metadata,
            )
        for key, name in (
            ("total_cost_usd", "costUsd"),
            ("num_turns", "numTurns"),
            ("duration_ms", "cliDurationMs"),
            ("usage", "usage"),
            ("subtype", "subtype"),
        ):
            if key in result:
                metadata[name] = result[key]
        content = result.get("result")
        if not isinstance(content, str):
            content = "\n".join(texts)
        failed = bool(result.get("is_error", False))
        status = as_int(result.get("api_error_status"))
        if failed and (status is not None or result.get("terminal_reason") == "api_error"):
            metadata["code"] = MODEL_RATE_LIMITED if status == 429 else MODEL_ERROR
            if status is not None:
                metadata["modelStatus"] = status
        return TurnResult(
            content=content,
            ok=not failed,
            session_id=session_id,
            metadata=metadata,
            usage=_usage(result),
            tool_calls=tuple(tools),
            raw=result,
        )


def _usage(result: dict[str, Any]) -> Usage:
    usage = result.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    # Claude counts cached input apart from the rest; all of it was the turn's input.
    parts = [
        as_int(usage.get(k))
        for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    ]
    known = [p for p in parts if p is not None]
    return Usage(
        input_tokens=sum(known) if known else None,
        output_tokens=as_int(usage.get("output_tokens")),
        cost_usd=as_float(result.get("total_cost_usd")),
    )


def _tool_names(message: Any) -> list[str]:
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        return []
    return [
        str(block["name"])
        for block in message["content"]
        if isinstance(block, dict) and block.get("type") == "tool_use" and "name" in block
    ]


def _texts(message: Any) -> list[str]:
    if not isinstance(message, dict):
        return []
    blocks = message.get("content")
    if not isinstance(blocks, list):
        return []
    return [
        str(block["text"])
        for block in blocks
        if isinstance(block, dict) and block.get("type") == "text" and "text" in block
    ]
