"""Token usage read from a provider's answer as it passes, streamed (SSE) or whole (JSON).

Every provider reports usage in an object named ``usage`` (Anthropic, OpenAI Responses and chat
completions; nested under ``message`` or ``response`` in some stream events) or
``usageMetadata`` (Gemini). Within one answer the last figure seen wins: Anthropic's
``message_delta`` and Gemini's last chunk carry the running totals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# A whole (non-streamed) answer is parsed only up to this size; usage comes at its end.
MAX_BODY_BYTES = 8 * 1024 * 1024
_INPUT = ("input_tokens", "prompt_tokens", "promptTokenCount")
_OUTPUT = ("output_tokens", "completion_tokens", "candidatesTokenCount")
# Added to the output when present (Gemini counts its thinking apart).
_OUTPUT_EXTRA = ("thoughtsTokenCount",)


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    model: str | None = None
    seen: bool = False


def _usage_object(event: Any) -> dict[str, Any] | None:
    if not isinstance(event, dict):
        return None
    for holder in (event, event.get("message"), event.get("response")):
        if isinstance(holder, dict):
            for name in ("usage", "usageMetadata"):
                found = holder.get(name)
                if isinstance(found, dict):
                    return found
    return None


def _model_of(event: Any) -> str | None:
    if not isinstance(event, dict):
        return None
    for holder in (event, event.get("message"), event.get("response")):
        if isinstance(holder, dict):
            model = holder.get("model") or holder.get("modelVersion")
            if isinstance(model, str):
                return model
    return None


def _first_int(usage: dict[str, Any], names: tuple[str, ...]) -> int | None:
    for name in names:
        value = usage.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


class UsageReader:
    """Fed the answer's bytes chunk by chunk; ``usage`` holds what they reported."""

    def __init__(self, streamed: bool) -> None:
        self.usage = Usage()
        self._streamed = streamed
        self._buffer = bytearray()
        self._overflow = False

    def feed(self, chunk: bytes) -> None:
        if self._overflow:
            return
        self._buffer += chunk
        if not self._streamed:
            if len(self._buffer) > MAX_BODY_BYTES:
                self._overflow = True
                self._buffer.clear()
            return
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_BODY_BYTES:
                    self._buffer.clear()
                return
            line = bytes(self._buffer[:end]).strip()
            del self._buffer[: end + 1]
            if line.startswith(b"data:"):
                self._event(line[5:].strip())

    def close(self) -> Usage:
        if self._streamed:
            if self._buffer.strip().startswith(b"data:"):
                self._event(bytes(self._buffer).strip()[5:].strip())
        elif self._buffer:
            self._event(bytes(self._buffer))
        self._buffer.clear()
        return self.usage

    def _event(self, data: bytes) -> None:
        if not data or data == b"[DONE]":
            return
        try:
            parsed = json.loads(data)
        except ValueError:
            return
        # Gemini's non-SSE stream is one JSON array of chunks.
        for event in parsed if isinstance(parsed, list) else [parsed]:
            self._take(event)

    def _take(self, event: Any) -> None:
        model = _model_of(event)
        if model is not None:
            self.usage.model = model
        found = _usage_object(event)
        if found is None:
            return
        tokens_in = _first_int(found, _INPUT)
        tokens_out = _first_int(found, _OUTPUT)
        extra = _first_int(found, _OUTPUT_EXTRA)
        if tokens_in is not None:
            self.usage.input_tokens = tokens_in
            self.usage.seen = True
        if tokens_out is not None:
            self.usage.output_tokens = tokens_out + (extra or 0)
            self.usage.seen = True
