"""What a turn's answer tells a thread: readable text, the confidence marker, a summary, usage.

Pure functions; the conventions are upstream Parallax's (``parseConfidenceMarker``,
``stripAnsi`` in @parallaxai/confidence, and the local runtime's summary of a turn).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# What a thread_turn_complete event carries of the answer (the control plane keeps 8000).
OUTPUT_MAX = 8000
SUMMARY_LINES = 5
SUMMARY_MAX = 1000

_OSC = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_CSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_ESCAPE = re.compile(r"\x1b.")
_CONFIDENCE = re.compile(r"confidence:\s*([0-9]*\.?[0-9]+)", re.IGNORECASE)


def strip_ansi(text: str) -> str:
    """``text`` without terminal control sequences and carriage returns."""
    return _ESCAPE.sub("", _CSI.sub("", _OSC.sub("", text))).replace("\r", "")


def parse_confidence(text: str) -> float | None:
    """The last ``CONFIDENCE: 0.x`` marker (any case), clamped to [0, 1]; None without one."""
    found = _CONFIDENCE.findall(strip_ansi(text))
    if not found:
        return None
    return min(1.0, max(0.0, float(found[-1])))


def readable(text: str) -> str:
    return strip_ansi(text).strip()


def output_tail(text: str) -> str:
    return text[-OUTPUT_MAX:]


def summary_of(text: str) -> str | None:
    """The answer's last few non-empty lines (what a supervisor reads first)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    return "\n".join(lines[-SUMMARY_LINES:])[-SUMMARY_MAX:]


def usage_of(metadata: Mapping[str, Any]) -> Any:
    """The turn's usage: the one result shape's (``{inputTokens, outputTokens, costUsd}``),
    else as the driver reported it, or None."""
    result = metadata.get("result")
    shaped = result.get("usage") if isinstance(result, Mapping) else None
    for value in (shaped, metadata.get("usage"), metadata.get("stats")):
        if value is not None:
            return value
    return None


def turn_complete_data(
    message: Mapping[str, Any], turn_id: Any, objective: bool
) -> tuple[dict[str, Any], str | None]:
    """A thread_turn_complete event's data for an answer message, and the answer's summary."""
    text = readable(str(message.get("content") or ""))
    data: dict[str, Any] = {
        "turnId": turn_id,
        "messageId": message.get("id"),
        "output": output_tail(text),
    }
    confidence = parse_confidence(text)
    if confidence is not None:
        data["confidence"] = confidence
    usage = usage_of(message.get("metadata") or {})
    if usage is not None:
        data["usage"] = usage
    if objective:
        data["objective"] = True
    return data, summary_of(text)
