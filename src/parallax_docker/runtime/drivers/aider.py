"""Aider: one ``--message-file`` turn, answers on stdout, the chat history kept in /workspace.

Aider takes a message as an argument or a file, not on stdin; an argument is limited in size
(one argv string may hold at most 128 KiB), so the turn wrapper writes the message (stdin) to a
private file and passes ``--message-file <file>``. Aider has no session ids: it keeps the
conversation in ``.aider.chat.history.md`` in the working directory, and later turns pass
``--restore-chat-history``. The answer is stdout without aider's banner and cost lines.
"""

from __future__ import annotations

from parallax_docker.runtime.drivers.approval import aider_flags
from parallax_docker.runtime.drivers.base import (
    TurnOutput,
    TurnPlan,
    TurnResult,
    base_metadata,
    error_text,
    find_login_url,
    marker_login,
)
from parallax_docker.thread_models import ApprovalPreset

# What the driver stores as the "session": aider resumes from its history file.
HISTORY_SESSION = "aider-chat-history"
_FLAGS = (
    "--no-git",
    "--no-pretty",
    "--no-stream",
    "--no-fancy-input",
    "--no-check-update",
    "--no-show-release-notes",
)
# Lines aider prints around the answer (banner, settings, costs), not part of it.
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
)
# litellm's exception name for a rejected key, as aider prints it.
_AUTH_HINTS = ("AuthenticationError",)


class AiderDriver:
    name = "aider"

    def plan(
        self,
        message: str,
        session_id: str | None,
        preset: ApprovalPreset = ApprovalPreset.AUTONOMOUS,
    ) -> TurnPlan:
        argv: tuple[str, ...] = ("aider", *_FLAGS, *aider_flags(preset))
        if session_id:
            argv += ("--restore-chat-history",)
        return TurnPlan(
            argv=argv,
            stdin=message.encode(),
            message_file_flag="--message-file",
            check_credentials=True,
        )

    def parse(self, output: TurnOutput) -> TurnResult:
        metadata = base_metadata(output)
        marker = marker_login(output)
        combined = f"{output.stdout_text}\n{output.stderr_text}"
        if marker is not None or any(hint in combined for hint in _AUTH_HINTS):
            return TurnResult(
                content=marker or _last_line(combined) or "aider needs a valid API key",
                ok=False,
                login_required=True,
                login_url=find_login_url(combined),
                metadata=metadata,
            )
        if output.exit_code != 0:
            return TurnResult(
                content=error_text(output, f"aider exited with code {output.exit_code}"),
                ok=False,
                metadata=metadata,
            )
        return TurnResult(
            content=_answer(output.stdout_text), session_id=HISTORY_SESSION, metadata=metadata
        )


def _answer(stdout: str) -> str:
    lines = [line for line in stdout.splitlines() if not line.startswith(_NOISE_PREFIXES)]
    return "\n".join(lines).strip()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
