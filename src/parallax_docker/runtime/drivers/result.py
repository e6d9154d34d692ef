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

# Error codes a turn's answer can carry (metadata.code of a message of type "error").
TURN_TIMEOUT = "TURN_TIMEOUT"
TURN_FAILED = "TURN_FAILED"
TURN_INTERRUPTED = "TURN_INTERRUPTED"
LOGIN_REQUIRED = "LOGIN_REQUIRED"


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


def answer_metadata(
    turn_id: str,
    driver: str,
    duration_ms: int,
    result: TurnResult,
    changes: WorkspaceChanges | None,
) -> dict[str, Any]:
    """A finished turn's answer metadata: its ids, its error code, and ``result``."""
    metadata: dict[str, Any] = {
        "turnId": turn_id,
        "driver": driver,
        "durationMs": duration_ms,
        **result.metadata,
    }
    if result.login_required:
        metadata["code"] = LOGIN_REQUIRED
        metadata["loginUrl"] = result.login_url
    elif not result.ok:
        metadata.setdefault("code", TURN_FAILED)
    metadata["result"] = result_shape(
        result,
        status=turn_status(
            result, interrupted=metadata.get("code") in (TURN_TIMEOUT, TURN_INTERRUPTED)
        ),
        session_id=result.session_id or metadata.get("sessionId"),
        duration_ms=duration_ms,
        changes=changes,
    )
    return metadata
