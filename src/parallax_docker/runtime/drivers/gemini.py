"""Gemini CLI: headless with ``--output-format json``, the message on stdin (no ``-p``).

Gemini runs headless when stdin is not a terminal and reads the prompt from it. The output is
one JSON object: ``session_id`` (resumed with ``--resume <id>`` on the next turn), ``response``
(the answer), ``stats`` (per model the tokens, per tool the calls), and ``error`` (``type``,
``message``, ``code``) when the turn failed; code 41 (the exit status too) is an authentication
failure.
"""

from __future__ import annotations

from typing import Any

from parallax_docker.runtime.drivers.approval import gemini_flags
from parallax_docker.runtime.drivers.base import (
    MODEL_ERROR,
    MODEL_RATE_LIMITED,
    TurnOutput,
    TurnPlan,
    TurnResult,
    Usage,
    as_int,
    base_metadata,
    error_text,
    find_login_url,
    last_json_object,
    marker_login,
    model_error_code,
)
from parallax_docker.thread_models import ApprovalPreset

# Gemini CLI's exit status (and error code) for an authentication failure.
AUTH_ERROR_CODE = 41
_RESUME_ERRORS = ("Invalid session identifier", "No previous sessions found")
# How gemini-cli words a failure of the model service (after its retries).
_MODEL_ERROR_HINTS = (
    "ApiError",
    "Error when talking to Gemini API",
    "RESOURCE_EXHAUSTED",
    "in JSON at position",
    "is not valid JSON",
)


class GeminiDriver:
    name = "gemini"

    def plan(
        self,
        message: str,
        session_id: str | None,
        preset: ApprovalPreset = ApprovalPreset.AUTONOMOUS,
    ) -> TurnPlan:
        # --skip-trust: /workspace is the agent's own.
        argv = ["gemini", "--output-format", "json", *gemini_flags(preset), "--skip-trust"]
        if session_id:
            argv += ["--resume", session_id]
        return TurnPlan(argv=tuple(argv), stdin=message.encode(), check_credentials=True)

    def parse(self, output: TurnOutput) -> TurnResult:
        body = last_json_object(output.stdout_text) or {}
        session = body.get("session_id")
        session_id = session if isinstance(session, str) and session else None
        metadata = base_metadata(output)
        if session_id:
            metadata["sessionId"] = session_id
        if "stats" in body:
            metadata["stats"] = body["stats"]
        error = body.get("error")
        message = str(error.get("message", "")) if isinstance(error, dict) else ""
        code = error.get("code") if isinstance(error, dict) else None
        marker = marker_login(output)
        if marker is not None or code == AUTH_ERROR_CODE or output.exit_code == AUTH_ERROR_CODE:
            return TurnResult(
                content=marker or message or "gemini needs a login",
                ok=False,
                session_id=session_id,
                login_required=True,
                login_url=find_login_url(f"{message}\n{output.stderr_text}"),
                metadata=metadata,
            )
        stats = body.get("stats")
        usage, tools = _usage(stats), _tool_calls(stats)
        raw = body or None
        response = body.get("response")
        if isinstance(response, str) and error is None and output.exit_code == 0:
            return TurnResult(
                content=response,
                session_id=session_id,
                metadata=metadata,
                usage=usage,
                tool_calls=tools,
                raw=raw,
            )
        text = f"{message}\n{output.stderr_text}"
        status = as_int(code)
        if status is not None and 400 <= status < 600:
            # gemini-cli reports the model service's HTTP status as the error's code.
            metadata["code"] = MODEL_RATE_LIMITED if status == 429 else MODEL_ERROR
            metadata["modelStatus"] = status
        elif _is_model_error(text):
            metadata["code"] = model_error_code(text)
        return TurnResult(
            content=message or error_text(output, f"gemini exited with code {output.exit_code}"),
            ok=False,
            session_id=session_id,
            resume_failed=any(hint in text for hint in _RESUME_ERRORS),
            metadata=metadata,
            usage=usage,
            tool_calls=tools,
            raw=raw,
        )


def _models(stats: Any) -> list[dict[str, Any]]:
    models = stats.get("models") if isinstance(stats, dict) else None
    return [m for m in models.values() if isinstance(m, dict)] if isinstance(models, dict) else []


def _usage(stats: Any) -> Usage | None:
    models = _models(stats)
    if not models:
        return None
    inputs: list[int] = []
    outputs: list[int] = []
    for model in models:
        tokens = model.get("tokens")
        if not isinstance(tokens, dict):
            continue
        prompt = as_int(tokens.get("prompt", tokens.get("input")))
        candidates = as_int(tokens.get("candidates"))
        if prompt is not None:
            inputs.append(prompt)
        if candidates is not None:
            outputs.append(candidates)
    return Usage(
        input_tokens=sum(inputs) if inputs else None,
        output_tokens=sum(outputs) if outputs else None,
    )


def _tool_calls(stats: Any) -> tuple[str, ...]:
    tools = stats.get("tools") if isinstance(stats, dict) else None
    by_name = tools.get("byName") if isinstance(tools, dict) else None
    if not isinstance(by_name, dict):
        return ()
    names: list[str] = []
    for name in sorted(by_name):
        entry = by_name[name]
        count = as_int(entry.get("count")) if isinstance(entry, dict) else None
        names.extend([str(name)] * (count or 0))
    return tuple(names)


def _is_model_error(text: str) -> bool:
    return any(hint in text for hint in _MODEL_ERROR_HINTS)
