"""OpenAI-compatible chat completions (aider, through litellm): ``POST /v1/chat/completions``.

Not streamed: one ``chat.completion`` object with ``choices[0].message`` and ``usage``
(``prompt_tokens``, ``completion_tokens``, ``total_tokens``). Streamed: ``chat.completion.chunk``
objects as ``data:`` events, the first delta carrying the role, ``content`` deltas or
``tool_calls`` deltas (id, name, then argument pieces), a last chunk with ``finish_reason``;
with ``stream_options.include_usage`` one more chunk with empty ``choices`` and the usage; then
``data: [DONE]``. A request without tools (aider's) gets a file write as an edit block in the
answer's text, in the format its system prompt asks for.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .responses import ERRORS
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

NAME = "openai-chat"


def route(request: Request) -> str | None:
    path = request.path.rstrip("/")
    if request.method == "POST" and path in ("/v1/chat/completions", "/chat/completions"):
        return "generate"
    return None


def tenant(request: Request) -> str:
    return bearer(request) or request.header("api-key")


def is_main(request: Request) -> bool:
    return True


def offers(request: Request) -> list[Offer]:
    body = body_of(request)
    found = []
    for tool in body.get("tools") or ():
        function = (tool or {}).get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            schema = function.get("parameters")
            found.append(Offer(function["name"], schema=schema if isinstance(schema, dict) else {}))
    return found


def instructions(request: Request) -> str:
    """The system prompt(s): a CLI without tools says there how it wants edits written."""
    body = body_of(request)
    return "\n".join(
        "\n".join(text_of(m.get("content")))
        for m in body.get("messages") or ()
        if isinstance(m, dict) and m.get("role") == "system"
    )


def transcript(request: Request) -> list[str]:
    body = body_of(request)
    texts: list[str] = []
    for message in body.get("messages") or ():
        if isinstance(message, dict) and message.get("role") != "system":
            texts.extend(text_of(message.get("content")))
            for call in message.get("tool_calls") or ():
                texts.extend(text_of((call or {}).get("function")))
    return texts


def error(reply: Reply, request: Request) -> Response:
    if reply.error == "garbage":
        return garbage(streaming(request))
    status, code, kind, message = ERRORS[reply.error]
    headers = {"retry-after": "1"} if status == 429 else {}
    payload = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return json_response(status, payload, headers)


def respond(request: Request, reply: Reply, call: Call | None, text: str) -> Response:
    body = body_of(request)
    model = str(body.get("model") or "gpt-standin")
    usage = {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
    }
    base = {"id": new_id("chatcmpl-"), "created": int(time.time()), "model": model}
    tool_calls: list[dict[str, Any]] = []
    if call is not None:
        tool_calls.append(
            {
                "id": new_id("call_"),
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
        )
    finish = "tool_calls" if tool_calls else "stop"
    if not streaming(request):
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
        return json_response(
            200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
        )

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return frame({**base, "object": "chat.completion.chunk", "choices": [choice]})

    frames = [chunk({"role": "assistant", "content": ""})]
    if text:
        frames.extend(chunk({"content": piece}) for piece in chunks(text))
    for index, tool_call in enumerate(tool_calls):
        function = dict(tool_call["function"])
        arguments = str(function["arguments"])
        opening = {**tool_call, "index": index, "function": {**function, "arguments": ""}}
        frames.append(chunk({"tool_calls": [opening]}))
        frames.extend(
            chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            for piece in chunks(arguments)
        )
    frames.append(chunk({}, finish))
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        frames.append(
            frame({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        )
    frames.append(frame("[DONE]"))
    return sse(frames)
