"""One result shape for every turn's answer, whatever the CLI (``metadata.result``).

``{content, status, usage, toolCalls, filesChanged, filesChangedTruncated, sessionId,
durationMs, raw}``: ``status`` is ``completed``, ``failed``, ``interrupted`` (the turn ran past
its timeout) or ``login_required``; ``usage`` holds ``inputTokens``, ``outputTokens`` and
``costUsd`` (each null when the CLI does not report it); ``toolCalls`` the ``count`` of tool
calls and the ``names`` of the tools called; ``filesChanged`` the files under /workspace the
turn added, modified or deleted (null when the image cannot list them); ``raw`` the CLI's own
final record. docs/messaging.md documents it; models.TurnResultShape is its OpenAPI schema.
"""

from __future__ import annotations

from typing import Any, Literal

from parallax_docker.runtime.drivers.base import TurnResult
from parallax_docker.runtime.workspace_changes import WorkspaceChanges

Status = Literal["completed", "failed", "interrupted", "login_required"]


def turn_status(result: TurnResult, interrupted: bool) -> Status:
    if interrupted:
        return "interrupted"
    if result.login_required:
        return "login_required"
    return "completed" if result.ok else "failed"


def result_shape(
    result: TurnResult,
    *,
    status: Status,
    session_id: str | None,
    duration_ms: int,
    changes: WorkspaceChanges | None,
) -> dict[str, Any]:
    usage = result.usage
    return {
        "content": result.content,
        "status": status,
        "usage": {
            "inputTokens": usage.input_tokens if usage else None,
            "outputTokens": usage.output_tokens if usage else None,
            "costUsd": usage.cost_usd if usage else None,
        },
        "toolCalls": {
            "count": len(result.tool_calls),
            "names": sorted(set(result.tool_calls)),
        },
        "filesChanged": (
            None
            if changes is None
            else [{"path": c.path, "change": c.change} for c in changes.files]
        ),
        "filesChangedTruncated": bool(changes and changes.truncated),
        "sessionId": session_id,
        "durationMs": duration_ms,
        "raw": result.raw,
    }
