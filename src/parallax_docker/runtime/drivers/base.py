"""What a driver is: (message, session) -> how to run one turn; the turn's output -> an answer.

Drivers are pure: they build an argument vector and parse bytes. Running the turn (docker exec,
stdin, timeouts) is the messaging service's part, so each driver is unit-tested without an
engine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from parallax_docker.thread_models import ApprovalPreset

# The marker the images' entrypoint and the turn wrapper print when a credential is missing
# (images/entrypoint/lib.sh: parallax_log "login required: ...").
LOGIN_MARKER = "parallax: login required:"
# The longest error text kept from a CLI's output.
ERROR_TEXT_MAX = 4000
# ``metadata.code`` of a turn the model service failed: it refused for its rate limit or quota,
# or it answered an error (5xx) or something that is not its protocol, after the CLI's retries.
MODEL_RATE_LIMITED = "MODEL_RATE_LIMITED"
MODEL_ERROR = "MODEL_ERROR"
_RATE_LIMIT_HINTS = (
    "429",
    "rate limit",
    "rate_limit",
    "ratelimit",
    "resource_exhausted",
    "resource has been exhausted",
    "quota",
    "too many requests",
)

_URL = re.compile(r"https?://[^\s\"'<>`]+")
_LOGIN_URL_HINTS = ("oauth", "login", "auth", "device", "signin", "sign-in", "activate", "consent")


@dataclass(frozen=True)
class TurnPlan:
    """How to run one turn: the CLI's argv and where the message goes.

    The message travels as bytes on stdin (never through a shell, never split). With
    ``message_file_flag``, the turn wrapper first writes stdin to a private file and passes
    ``<flag> <file>`` to the CLI (for CLIs that take a message file but not stdin). An empty
    ``argv`` runs the image's own turn command (its ``PARALLAX_CLI_BIN``).
    """

    argv: tuple[str, ...]
    stdin: bytes
    message_file_flag: str | None = None
    # Refuse before the CLI starts when the agent type's credential is missing (CLIs that
    # would otherwise retry a network call until the turn times out).
    check_credentials: bool = False
    # The session this turn runs in, when the driver names it (a CLI without session ids of
    # its own); the turn's answer keeps it unless the CLI reports another.
    session_id: str | None = None


@dataclass(frozen=True)
class TurnOutput:
    stdout: bytes
    stderr: bytes
    exit_code: int
    truncated: bool = False

    @property
    def stdout_text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", "replace")


@dataclass(frozen=True)
class Usage:
    """What a turn cost, as far as the CLI reports it (None: not reported)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None


@dataclass(frozen=True)
class TurnResult:
    """A turn's answer: the content, or an error, and what the next turn needs."""

    content: str
    ok: bool = True
    # The CLI session to resume on the next turn; None keeps whatever was kept before.
    session_id: str | None = None
    login_required: bool = False
    login_url: str | None = None
    # The CLI refused the session to resume (it is gone): run the turn again without it.
    resume_failed: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    usage: Usage | None = None
    # The name of every tool the CLI ran, in order (one entry per call).
    tool_calls: tuple[str, ...] = ()
    # The CLI's own final record (its result event, its JSON answer), as it printed it.
    raw: Any = None


class Driver(Protocol):
    """Drives one CLI in its non-interactive, structured mode."""

    name: str

    def plan(
        self,
        message: str,
        session_id: str | None,
        preset: ApprovalPreset = ApprovalPreset.AUTONOMOUS,
    ) -> TurnPlan: ...

    def parse(self, output: TurnOutput) -> TurnResult: ...


# -- helpers shared by the drivers ---------------------------------------------------------


def json_lines(text: str) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON-lines stream; other lines (banners, warnings) are skipped."""
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            yield value


def last_json_object(text: str) -> dict[str, Any] | None:
    """The last top-level JSON object in ``text`` (a CLI may print other lines before it)."""
    decoder = json.JSONDecoder()
    found: dict[str, Any] | None = None
    index = text.find("{")
    while index != -1:
        try:
            value, end = decoder.raw_decode(text, index)
        except ValueError:
            index = text.find("{", index + 1)
            continue
        if isinstance(value, dict):
            found = value
        index = text.find("{", end)
    return found


def marker_login(output: TurnOutput) -> str | None:
    """The text after the runtime's own login-required marker, if the turn printed it."""
    for line in output.stderr_text.splitlines():
        if line.startswith(LOGIN_MARKER):
            return line[len(LOGIN_MARKER) :].strip() or "a login is required"
    return None


def find_login_url(text: str) -> str | None:
    """A URL the CLI printed for a person to log in with, if there is one."""
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:)]}")
        if any(hint in url.lower() for hint in _LOGIN_URL_HINTS):
            return url
    return None


def error_text(output: TurnOutput, fallback: str) -> str:
    """The end of stderr (where CLIs put their last word), or ``fallback``."""
    text = output.stderr_text.strip()
    if not text:
        return fallback
    return text[-ERROR_TEXT_MAX:]


def model_error_code(text: str) -> str:
    """The code of a model service failure from the CLI's words for it (rate limit or other)."""
    lowered = text.lower()
    return MODEL_RATE_LIMITED if any(h in lowered for h in _RATE_LIMIT_HINTS) else MODEL_ERROR


def as_float(value: Any) -> float | None:
    """A number (a cost) from a CLI's JSON; bools are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def as_int(value: Any) -> int | None:
    """An integer count from a CLI's JSON (bools and non-numbers are not counts)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def base_metadata(output: TurnOutput) -> dict[str, Any]:
    metadata: dict[str, Any] = {"exitCode": output.exit_code}
    if output.truncated:
        metadata["truncated"] = True
    return metadata
