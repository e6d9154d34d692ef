"""The messages of a conversation: their ids, their API form, and the answer of a turn cut short.

Pure helpers of runtime/messaging.py.
"""

from __future__ import annotations

import contextlib
import secrets

from parallax_docker.models import AgentMessage
from parallax_docker.runtime.clock import iso_time
from parallax_docker.runtime.drivers import Driver
from parallax_docker.runtime.drivers.base import TurnOutput, TurnResult
from parallax_docker.runtime.store import StoredMessage


def message_id() -> str:
    return f"msg-{secrets.token_hex(8)}"


def message_model(message: StoredMessage) -> AgentMessage:
    return AgentMessage(
        id=message.id,
        agent_id=message.agent_id,
        direction="inbound" if message.direction == "inbound" else "outbound",
        type=message.type,
        content=message.content,
        metadata=message.metadata,
        timestamp=iso_time(message.timestamp),
    )


def said_before_cut(driver: Driver, output: bytes) -> str:
    """What a CLI cut short had said, read as if it had ended well (in its own terms)."""
    if not output:
        return ""
    said = ""
    with contextlib.suppress(Exception):
        parsed = driver.parse(TurnOutput(stdout=output, stderr=b"", exit_code=0))
        said = parsed.content if parsed.ok else ""
    return said or output.decode("utf-8", "replace")


def interrupted_on_request(driver: Driver, output: TurnOutput | None, code: str) -> TurnResult:
    """The answer of a turn someone interrupted (a thread's Ctrl-C): what it had said."""
    said = said_before_cut(driver, output.stdout) if output is not None else ""
    return TurnResult(
        content="the turn was interrupted on request"
        + (f"; the agent had said: {said}" if said else ""),
        ok=False,
        metadata={"code": code, "status": "interrupted", "requested": True},
    )
