"""OpenAI Responses API (codex): ``POST /v1/responses``, streaming or not.

A streamed response is the documented event sequence, every event with a ``sequence_number``:
``response.created``, ``response.in_progress``; per output item ``response.output_item.added``,
then for a message ``response.content_part.added``, ``response.output_text.delta``...,
``response.output_text.done``, ``response.content_part.done``; for a function call
``response.function_call_arguments.delta``... and ``.done``; for a custom (freeform) tool call
``response.custom_tool_call_input.delta``... and ``.done``; then ``response.output_item.done``;
and last ``response.completed`` with the whole response and its ``usage``. There is no
``[DONE]`` sentinel. Tools are read from ``tools`` and from codex's ``additional_tools`` input
items, namespaces included.
"""

from __future__ import annotations

import json
import time
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

NAME = "openai-responses"
ERRORS = {
    "429": (429, "rate_limit_exceeded", "requests", "Rate limit reached for requests"),
    "500": (500, None, "server_error", "The server had an error while processing your request."),
}


def route(request: Request) -> str | None:
    if request.method == "POST" and request.path.rstrip("/") in ("/v1/responses", "/responses"):
        return "generate"
    return None


def tenant(request: Request) -> str:
    return bearer(request)


def _tool_lists(body: dict[str, Any]) -> list[list[Any]]:
    lists = [body.get("tools") or []]
    for item in body.get("input") or ():
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            lists.append(item.get("tools") or [])
    return [tools for tools in lists if isinstance(tools, list)]


def is_main(request: Request) -> bool:
    body = body_of(request)
    return any(_tool_lists(body))


def offers(request: Request) -> list[Offer]:
    body = body_of(request)
    found: list[Offer] = []

    def walk(tools: list[Any], namespace: str | None) -> None:
        for tool in tools:
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                continue
            kind = tool.get("type")
            if kind == "namespace":
                walk(tool.get("tools") or [], tool["name"])
            elif kind in ("function", "custom"):
                schema = tool.get("parameters") if kind == "function" else tool.get("format")
                found.append(
                    Offer(tool["name"], kind, namespace, schema if isinstance(schema, dict) else {})
                )

    for tools in _tool_lists(body):
        walk(tools, None)
    return found


def transcript(request: Request) -> list[str]:
    body = body_of(request)
    texts: list[str] = []
    items = body.get("input")
    if isinstance(items, str):
        return [items]
    for item in items or ():
        if isinstance(item, dict) and item.get("type") != "additional_tools":
            texts.extend(text_of(item))
    return texts


def error(reply: Reply, request: Request) -> Response:
    if reply.error == "garbage":
        return garbage(streaming(request))
    status, code, kind, message = ERRORS[reply.error]
    headers = {"x-request-id": new_id("req_")}
    if status == 429:
        headers["retry-after"] = "1"
    payload = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return json_response(status, payload, headers)


def _item(call: Call | None, text: str) -> dict[str, Any]:
    if call is None:
        return {
            "id": new_id("msg_"),
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
    item: dict[str, Any] = {"id": new_id("fc_"), "status": "completed", "call_id": new_id("call_")}
    if call.kind == "custom":
        item.update(type="custom_tool_call", name=call.name, input=call.input)
    else:
        item.update(type="function_call", name=call.name, arguments=json.dumps(call.arguments))
    if call.namespace:
        item["namespace"] = call.namespace
    return item


def respond(request: Request, reply: Reply, call: Call | None, text: str) -> Response:
    body = body_of(request)
    output = []
    if call is None or text:
        output.append(_item(None, text))
    if call is not None:
        output.append(_item(call, ""))
    response = {
        "id": new_id("resp_"),
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": str(body.get("model") or "gpt-standin"),
        "output": output,
        "parallel_tool_calls": False,
        "error": None,
        "incomplete_details": None,
        "usage": {
            "input_tokens": reply.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": reply.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": reply.input_tokens + reply.output_tokens,
        },
    }
    if not streaming(request):
        return json_response(200, response)
    return sse(stream_events(response))


def stream_events(response: dict[str, Any]) -> list[bytes]:
    """The SSE frames that stream ``response`` (a complete Responses API response)."""
    events: list[dict[str, Any]] = []
    pending = {**response, "status": "in_progress", "output": [], "usage": None}
    events.append({"type": "response.created", "response": pending})
    events.append({"type": "response.in_progress", "response": pending})
    for index, item in enumerate(response["output"]):
        events.extend(_item_events(index, item))
    events.append({"type": "response.completed", "response": response})
    return [
        frame({**event, "sequence_number": number}, event["type"])
        for number, event in enumerate(events)
    ]


def _item_events(index: int, item: dict[str, Any]) -> list[dict[str, Any]]:
    at = {"item_id": item["id"], "output_index": index}
    if item["type"] == "message":
        text = item["content"][0]["text"]
        part = {"type": "output_text", "text": "", "annotations": []}
        opening = {**item, "status": "in_progress", "content": []}
        return [
            {"type": "response.output_item.added", "output_index": index, "item": opening},
            {"type": "response.content_part.added", **at, "content_index": 0, "part": part},
            *(
                {"type": "response.output_text.delta", **at, "content_index": 0, "delta": piece}
                for piece in chunks(text)
            ),
            {"type": "response.output_text.done", **at, "content_index": 0, "text": text},
            {
                "type": "response.content_part.done",
                **at,
                "content_index": 0,
                "part": {**part, "text": text},
            },
            {"type": "response.output_item.done", "output_index": index, "item": item},
        ]
    field, event = (
        ("input", "response.custom_tool_call_input")
        if item["type"] == "custom_tool_call"
        else ("arguments", "response.function_call_arguments")
    )
    opening = {**item, "status": "in_progress", field: ""}
    return [
        {"type": "response.output_item.added", "output_index": index, "item": opening},
        *({"type": f"{event}.delta", **at, "delta": piece} for piece in chunks(item[field])),
        {"type": f"{event}.done", **at, field: item[field]},
        {"type": "response.output_item.done", "output_index": index, "item": item},
    ]
