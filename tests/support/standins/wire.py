"""What every protocol module shares: the request it gets, the response it gives, SSE framing."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The bytes a "garbage" reply sends where a JSON body or an SSE stream was expected.
GARBAGE_JSON = b"<html><body>502 upstream garbage {{{ this is not JSON"
GARBAGE_SSE = b"data: {this is not JSON\n\n"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: Any  # the parsed JSON body, or None
    raw: bytes = b""

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass
class Response:
    """A whole body, or SSE frames written (and flushed) one at a time; or no answer at all."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    frames: list[bytes] | None = None
    hang: bool = False
    drop: bool = False

    @property
    def streaming(self) -> bool:
        return self.frames is not None


def body_of(request: Request) -> dict[str, Any]:
    """The request's JSON object (an empty one when the body was anything else)."""
    return request.body if isinstance(request.body, dict) else {}


def streaming(request: Request) -> bool:
    """Whether the request asks for a stream (``"stream": true``)."""
    return bool(body_of(request).get("stream"))


def garbage(stream: bool) -> Response:
    """A 200 whose body is not the protocol: a broken event stream or broken JSON."""
    if stream:
        return Response(headers={"content-type": "text/event-stream"}, frames=[GARBAGE_SSE])
    return Response(headers={"content-type": "application/json"}, body=GARBAGE_JSON)


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(
        status=status,
        headers={"content-type": "application/json", **(headers or {})},
        body=body,
    )


def sse(frames: list[bytes]) -> Response:
    return Response(
        headers={"content-type": "text/event-stream", "cache-control": "no-cache"},
        frames=frames,
    )


def frame(data: Any, event: str | None = None) -> bytes:
    """One server-sent event: an optional ``event:`` line and one ``data:`` line of JSON."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


def new_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


def bearer(request: Request) -> str:
    value = request.header("authorization")
    return value[7:].strip() if value.lower().startswith("bearer ") else ""


def chunks(text: str, size: int = 24) -> list[str]:
    """A text cut into deltas, the way a model streams it (one empty delta for empty text)."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def text_of(content: Any) -> list[str]:
    """Every string under a message's content (strings, parts, nested tool results)."""
    found: list[str] = []
    if isinstance(content, str):
        found.append(content)
    elif isinstance(content, list):
        for item in content:
            found.extend(text_of(item))
    elif isinstance(content, dict):
        for key in ("text", "content", "output", "input", "arguments", "args", "response"):
            value = content.get(key)
            if isinstance(value, dict):
                # A tool call's input object (claude's tool_use, gemini's args).
                found.append(json.dumps(value, sort_keys=True))
            elif value is not None:
                found.extend(text_of(value))
        for key in ("functionCall", "functionResponse"):
            if isinstance(content.get(key), dict):
                found.append(json.dumps(content[key], sort_keys=True))
    return found
