"""Aider: one ``--message-file`` turn, answers on stdout, the chat history kept in the home.

Aider takes a message as an argument or a file, not on stdin; an argument is limited in size
(one argv string may hold at most 128 KiB), so the turn wrapper writes the message (stdin) to a
private file and passes ``--message-file <file>``. Aider has no session ids: it keeps a
conversation in a chat history file and reads it back with ``--restore-chat-history``. The
driver names a session itself (``aider-<hex>``) and keeps its history in the home directory
(``~/.aider.chat.<session>.md``), which lasts as long as the agent's home (a restart, an
execution's later agents), where aider's default (``.aider.chat.history.md`` in the working
directory) would show up among the turn's changed files and vanish with /workspace.

The answer is what aider prints between its banner and its ``Tokens: ... Cost: ...`` report
(the usage); each ``Applied edit to <file>`` is one tool call (an edit). A turn the model
service failed prints litellm's exception (``litellm.RateLimitError``, ...) and no report.
"""

from __future__ import annotations

import re
import secrets

from parallax_docker.runtime.drivers.approval import aider_flags
from parallax_docker.runtime.drivers.base import (
    ERROR_TEXT_MAX,
    TurnOutput,
    TurnPlan,
    TurnResult,
    Usage,
    base_metadata,
    error_text,
    find_login_url,
    marker_login,
    model_error_code,
)
from parallax_docker.security import AGENT_HOME
from parallax_docker.thread_models import ApprovalPreset

_FLAGS = (
    "--no-git",
    "--no-pretty",
    "--no-stream",
    "--no-fancy-input",
    "--no-check-update",
    "--no-show-release-notes",
    "--no-show-model-warnings",
)
_SESSION = re.compile(r"^aider-[0-9a-f]{16}\Z")
# Lines aider prints around the answer (banner, settings), not part of it.
_NOISE_PREFIXES = (
    "Aider v",
    "Main model:",
    "Weak model:",
    "Editor model:",
    "Model:",
    "Git repo:",
    "Repo-map:",
    "Tokens:",
    "Cost:",
    "Use /help",
    "Restored previous conversation history.",
    "https://aider.chat/",
    "Using ",
)
# litellm's exception name for a rejected key, as aider prints it.
_AUTH_HINTS = ("AuthenticationError",)
_MODEL_ERROR = re.compile(r"^litellm\.(\w+):?(.*)$", re.MULTILINE)
_TOKENS = re.compile(
    r"^Tokens: ([\d.]+)([kM]?) sent,(?: [^,\n]*,)*? ([\d.]+)([kM]?) received\."
    r"(?: Cost: \$([\d.]+) message)?",
    re.MULTILINE,
)
_EDIT = re.compile(r"^Applied edit to (.+)$", re.MULTILINE)
_SCALE = {"": 1, "k": 1_000, "M": 1_000_000}


def history_file(session: str) -> str:
    return f"{AGENT_HOME}/.aider.chat.{session}.md"


class AiderDriver:
    name = "aider"

    def plan(
        self,
        message: str,
        session_id: str | None,
        preset: ApprovalPreset = ApprovalPreset.AUTONOMOUS,
    ) -> TurnPlan:
        resume = session_id is not None and _SESSION.match(session_id) is not None
        session = session_id if resume and session_id else f"aider-{secrets.token_hex(8)}"
        argv: tuple[str, ...] = (
            "aider",
            *_FLAGS,
            *aider_flags(preset),
            "--chat-history-file",
            history_file(session),
            "--input-history-file",
            f"{AGENT_HOME}/.aider.input.{session}",
        )
        if resume:
            argv += ("--restore-chat-history",)
        return TurnPlan(
            argv=argv,
            stdin=message.encode(),
            message_file_flag="--message-file",
            check_credentials=True,
            session_id=session,
        )

    def parse(self, output: TurnOutput) -> TurnResult:
        metadata = base_metadata(output)
        marker = marker_login(output)
        stdout = output.stdout_text
        combined = f"{stdout}\n{output.stderr_text}"
        if marker is not None or any(hint in combined for hint in _AUTH_HINTS):
            return TurnResult(
                content=marker or _last_line(combined) or "aider needs a valid API key",
                ok=False,
                login_required=True,
                login_url=find_login_url(combined),
                metadata=metadata,
            )
        reports = list(_TOKENS.finditer(stdout))
        usage = _usage(reports)
        edits = tuple("edit" for _ in _EDIT.finditer(stdout))
        raw = reports[-1].group(0) if reports else None
        failures = list(_MODEL_ERROR.finditer(combined))
        if failures and not reports:
            # The model service failed (after aider's retries): no answer, no usage report.
            # Aider wraps its error lines: the last error is everything after its name.
            last = combined[failures[-1].start() :].strip()
            metadata["code"] = model_error_code(last)
            return TurnResult(
                content=last[:ERROR_TEXT_MAX],
                ok=False,
                metadata=metadata,
                tool_calls=edits,
                raw=last[:ERROR_TEXT_MAX],
            )
        if output.exit_code != 0:
            return TurnResult(
                content=error_text(output, f"aider exited with code {output.exit_code}"),
                ok=False,
                metadata=metadata,
                usage=usage,
                tool_calls=edits,
                raw=raw,
            )
        return TurnResult(
            content=_answer(stdout, reports[0].start() if reports else None),
            metadata=metadata,
            usage=usage,
            tool_calls=edits,
            raw=raw,
        )


def _answer(stdout: str, report_at: int | None) -> str:
    """What aider printed before its first usage report, without its banner and warnings."""
    text = stdout if report_at is None else stdout[:report_at]
    lines = [line for line in text.splitlines() if not line.startswith(_NOISE_PREFIXES)]
    return "\n".join(lines).strip()


def _count(number: str, scale: str) -> int:
    return round(float(number) * _SCALE[scale])


def _usage(reports: list[re.Match[str]]) -> Usage | None:
    if not reports:
        return None
    costs = [float(r.group(5)) for r in reports if r.group(5)]
    return Usage(
        input_tokens=sum(_count(r.group(1), r.group(2)) for r in reports),
        output_tokens=sum(_count(r.group(3), r.group(4)) for r in reports),
        cost_usd=round(sum(costs), 6) if costs else None,
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
