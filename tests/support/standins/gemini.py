"""Gemini API (gemini-cli): ``POST /v1beta/models/{model}:streamGenerateContent?alt=sse``,
``:generateContent`` and ``:countTokens``.

A streamed answer is a series of ``GenerateContentResponse`` chunks as server-sent events
(``data: {...}``, no event names): text parts a piece at a time, a ``functionCall`` part for a
tool call, and a last chunk with ``finishReason: "STOP"`` and ``usageMetadata``
(``promptTokenCount``, ``candidatesTokenCount``, ``totalTokenCount``). Without ``alt=sse`` the
same chunks come as one JSON array. gemini-cli also makes side calls that ask for JSON by
schema (``responseJsonSchema``: its model router, its next-speaker check); those get the
smallest instance of the schema and leave the script alone.
"""

from __future__ import annotations

import json
import re
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
    sse,
    text_of,
)

NAME = "gemini"
_PATH = re.compile(r"^/(v1|v1beta|v1alpha)/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")
_ERRORS = {
    "429": (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    "500": (500, "INTERNAL", "An internal error has occurred."),
}
# An enum answer a side call gets when it offers one: hand the turn back to the user.
_PREFERRED_ENUM = ("user", "USER")


def route(request: Request) -> str | None:
    match = _PATH.match(request.path)
    if match is None or request.method != "POST":
        return None
    return {
        "streamGenerateContent": "generate",
        "generateContent": "generate",
        "countTokens": "count_tokens",
    }.get(match.group("method"))


def tenant(request: Request) -> str:
    return request.header("x-goog-api-key") or request.query.get("key", "") or bearer(request)


def _config(request: Request) -> dict[str, Any]:
    body = body_of(request)
    config = body.get("generationConfig") or body.get("config") or {}
    return config if isinstance(config, dict) else {}


def _schema(request: Request) -> dict[str, Any] | None:
    config = _config(request)
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    return schema if isinstance(schema, dict) else None


def is_main(request: Request) -> bool:
    return _schema(request) is None


def offers(request: Request) -> list[Offer]:
    body = body_of(request)
    found = []
    for tool in body.get("tools") or ():
        for declaration in (tool or {}).get("functionDeclarations") or ():
            if isinstance(declaration, dict) and isinstance(declaration.get("name"), str):
                schema = declaration.get("parametersJsonSchema") or declaration.get("parameters")
                found.append(
                    Offer(declaration["name"], schema=schema if isinstance(schema, dict) else {})
                )
    return found


def transcript(request: Request) -> list[str]:
    body = body_of(request)
    texts: list[str] = []
    for content in body.get("contents") or ():
        if isinstance(content, dict):
            texts.extend(text_of(content.get("parts")))
    return texts


def other(kind: str, request: Request) -> Response:
    return json_response(200, {"totalTokens": max(1, len(request.raw) // 4)})


def error(reply: Reply, request: Request) -> Response:
    if reply.error == "garbage":
        return garbage(_sse(request))
    status, name, message = _ERRORS[reply.error]
    return json_response(status, {"error": {"code": status, "message": message, "status": name}})


def side_text(request: Request) -> str:
    """The JSON text a side call gets: the smallest instance of the schema it asked for."""
    return json.dumps(schema_instance(_schema(request) or {}))


def schema_instance(schema: dict[str, Any]) -> Any:
    """The smallest value that satisfies ``schema`` (types may be upper-case, as Gemini's)."""
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return next((value for value in _PREFERRED_ENUM if value in enum), enum[0])
    kind = str(schema.get("type", "object")).lower()
    if kind == "object":
        props = schema.get("properties") or {}
        required = schema.get("required") or list(props)
        return {name: schema_instance(props.get(name) or {}) for name in required}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    return "stand-in"


def respond(request: Request, reply: Reply, call: Call | None, text: str) -> Response:
    match = _PATH.match(request.path)
    model = match.group("model") if match else "gemini-standin"
    pieces: list[dict[str, Any]] = [{"text": piece} for piece in chunks(text)] if text else []
    if call is not None:
        pieces.append({"functionCall": {"name": call.name, "args": call.arguments}})
    if not pieces:
        pieces.append({"text": ""})
    usage = {
        "promptTokenCount": reply.input_tokens,
        "candidatesTokenCount": reply.output_tokens,
        "totalTokenCount": reply.input_tokens + reply.output_tokens,
    }
    responses = []
    for index, part in enumerate(pieces):
        candidate: dict[str, Any] = {"content": {"parts": [part], "role": "model"}, "index": 0}
        chunk: dict[str, Any] = {"candidates": [candidate], "modelVersion": model}
        if index == len(pieces) - 1:
            candidate["finishReason"] = "STOP"
            chunk["usageMetadata"] = usage
        responses.append(chunk)
    method = match.group("method") if match else "generateContent"
    if method == "generateContent":
        # One response: the whole text in one part, then the call.
        whole: list[dict[str, Any]] = [{"text": text}] if text or call is None else []
        if call is not None:
            whole.append(pieces[-1])
        merged = {**responses[-1]}
        merged["candidates"] = [
            {**responses[-1]["candidates"][0], "content": {"parts": whole, "role": "model"}}
        ]
        return json_response(200, merged)
    if not _sse(request):
        return json_response(200, responses)
    return sse([frame(chunk) for chunk in responses])


def _sse(request: Request) -> bool:
    return request.query.get("alt") == "sse"
