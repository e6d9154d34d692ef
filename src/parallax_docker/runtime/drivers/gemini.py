"""Gemini CLI: headless with ``--output-format json``, the message on stdin (no ``-p``).

Gemini runs headless when stdin is not a terminal and reads the prompt from it. The output is
one JSON object: ``session_id`` (resumed with ``--resume <id>`` on the next turn), ``response``
(the answer), ``stats``, and ``error`` (``type``, ``message``, ``code``) when the turn failed;
code 41 (the exit status too) is an authentication failure.
"""

from __future__ import annotations

from parallax_docker.runtime.drivers.approval import gemini_flags
from parallax_docker.runtime.drivers.base import (
    TurnOutput,
    TurnPlan,
    TurnResult,
    base_metadata,
    error_text,
    find_login_url,
    last_json_object,
    marker_login,
)
from parallax_docker.thread_models import ApprovalPreset

# Gemini CLI's exit status (and error code) for an authentication failure.
AUTH_ERROR_CODE = 41
_RESUME_ERRORS = ("Invalid session identifier", "No previous sessions found")


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
        response = body.get("response")
        if isinstance(response, str) and error is None and output.exit_code == 0:
            return TurnResult(content=response, session_id=session_id, metadata=metadata)
        text = f"{message}\n{output.stderr_text}"
        return TurnResult(
            content=message or error_text(output, f"gemini exited with code {output.exit_code}"),
            ok=False,
            session_id=session_id,
            resume_failed=any(hint in text for hint in _RESUME_ERRORS),
            metadata=metadata,
        )
