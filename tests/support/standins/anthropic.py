"""Anthropic Messages API (claude): ``POST /v1/messages``, streaming or not.

A streamed message is the documented event sequence: ``message_start`` (the message with
empty content and the input usage), then per content block ``content_block_start``,
``content_block_delta`` (``text_delta``, or ``input_json_delta`` pieces of a ``tool_use``
block's input) and ``content_block_stop``; then ``message_delta`` (``stop_reason`` and the
output usage) and ``message_stop``. A ``ping`` follows the start, as the API sends one.
Also served: ``/v1/messages/count_tokens``, ``/v1/models``, and the ``/api/hello`` probe claude
sends to its base URL before the first call.
"""

from __future__ import annotations

import json
from typing import Any

from .script import Reply
from .tools import Call, Offer
from .wire import (
    Request,
    Response,
    bearer,
    body_of,
    chunks,
    frame,
    garbage,
    json_response,
    new_id,
    sse,
    streaming,
    text_of,
)

NAME = "anthropic"
_ERRORS = {
    "429": (429, "rate_limit_error", "Number of request tokens has exceeded your rate limit"),
    "500": (500, "api_error", "Internal server error"),
}


def route(request: Request) -> str | None:
    path = request.path.rstrip("/")
    if request.method == "POST" and path == "/v1/messages":
        return "generate"
    if request.method == "POST" and path == "/v1/messages/count_tokens":
        return "count_tokens"
    if request.method == "GET" and path == "/v1/models":
        return "models"
    if request.method in ("GET", "HEAD") and path == "/api/hello":
        return "hello"
    return None


def tenant(request: Request) -> str:
    return request.header("x-api-key") or bearer(request)


def is_main(request: Request) -> bool:
    # Claude's conversation calls carry its tools; side calls (titles, probes) carry none.
    body = body_of(request)
    return bool(body.get("tools"))


def offers(request: Request) -> list[Offer]:
    body = body_of(request)
    found = []
    for tool in body.get("tools") or ():
        if isinstance(tool, dict) and isinstance(tool.get("name"), str):
            schema = tool.get("input_schema")
            found.append(Offer(tool["name"], schema=schema if isinstance(schema, dict) else {}))
    return found


def transcript(request: Request) -> list[str]:
    body = body_of(request)
    texts: list[str] = []
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            texts.extend(text_of(message.get("content")))
    return texts


def other(kind: str, request: Request) -> Response:
    if kind == "count_tokens":
        return json_response(200, {"input_tokens": max(1, len(request.raw) // 4)})
    if kind == "models":
        model = {"type": "model", "id": "claude-standin", "display_name": "Stand-in"}
        return json_response(200, {"data": [model], "has_more": False})
    return Response(status=200, headers={"content-type": "text/plain"}, body=b"hello")


def error(reply: Reply, request: Request) -> Response:
    if reply.error == "garbage":
        return garbage(streaming(request))
    status, kind, message = _ERRORS[reply.error]
    headers = {"request-id": new_id("req_")}
    if status == 429:
        headers["retry-after"] = "1"
    return json_response(
        status, {"type": "error", "error": {"type": kind, "message": message}}, headers
    )


def respond(request: Request, reply: Reply, call: Call | None, text: str) -> Response:
    body = body_of(request)
    model = str(body.get("model") or "claude-standin")
    blocks: list[dict[str, Any]] = []
    if text:
        blocks.append({"type": "text", "text": text})
    if call is not None:
        blocks.append(
            {"type": "tool_use", "id": new_id("toolu_"), "name": call.name, "input": call.arguments}
        )
    stop = "tool_use" if call is not None else "end_turn"
    message: dict[str, Any] = {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": reply.input_tokens,
            "output_tokens": reply.output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }
    if not streaming(request):
        return json_response(200, message)
    return sse(stream_events(message))


def stream_events(message: dict[str, Any]) -> list[bytes]:
    """The SSE frames that stream ``message`` (a complete Messages API response)."""
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {**message["usage"], "output_tokens": 1},
    }
    frames = [
        frame({"type": "message_start", "message": start}, "message_start"),
        frame({"type": "ping"}, "ping"),
    ]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            opening: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in chunks(block["text"])]
        else:
            opening = {**block, "input": {}}
            encoded = json.dumps(block["input"], separators=(",", ":"))
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in chunks(encoded)]
        frames.append(
            frame(
                {"type": "content_block_start", "index": index, "content_block": opening},
                "content_block_start",
            )
        )
        for delta in deltas:
            frames.append(
                frame(
                    {"type": "content_block_delta", "index": index, "delta": delta},
                    "content_block_delta",
                )
            )
        frames.append(frame({"type": "content_block_stop", "index": index}, "content_block_stop"))
    frames.append(
        frame(
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": message["usage"]["output_tokens"]},
            },
            "message_delta",
        )
    )
    frames.append(frame({"type": "message_stop"}, "message_stop"))
    return frames
