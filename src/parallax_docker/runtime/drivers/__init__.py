"""One driver per CLI: how a message becomes a turn and the turn's output an answer.

See docs/messaging.md for how each CLI is driven.
"""

from __future__ import annotations

from parallax_docker.runtime.drivers.aider import AiderDriver
from parallax_docker.runtime.drivers.base import Driver, TurnOutput, TurnPlan, TurnResult
from parallax_docker.runtime.drivers.claude import ClaudeDriver
from parallax_docker.runtime.drivers.codex import CodexDriver
from parallax_docker.runtime.drivers.custom import CustomDriver
from parallax_docker.runtime.drivers.gemini import GeminiDriver

__all__ = ["Driver", "TurnOutput", "TurnPlan", "TurnResult", "driver_for"]

_DRIVERS: dict[str, Driver] = {
    "claude": ClaudeDriver(),
    "codex": CodexDriver(),
    "gemini": GeminiDriver(),
    "aider": AiderDriver(),
    "custom": CustomDriver(),
}


def driver_for(agent_type: str) -> Driver:
    """The driver of an agent type; anything unknown is driven like a custom agent."""
    return _DRIVERS.get(agent_type, _DRIVERS["custom"])
