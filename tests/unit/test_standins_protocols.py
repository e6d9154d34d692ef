"""The stand-ins against the providers' documented wire formats, over real HTTP (in-process).

Anthropic Messages: message_start, content_block_start/delta/stop (text_delta, input_json_delta),
message_delta (stop_reason, usage), message_stop. OpenAI Responses: response.created ...
response.completed with sequence numbers and usage, no [DONE]. Gemini: data-only SSE chunks,
the last with finishReason STOP and usageMetadata. Chat completions: chunks, finish_reason,
the usage chunk, [DONE].
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.standins.client import Tenant
from tests.support.standins.server import StandinServer, running

BASH = {
    "name": "Bash",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}, "description": {"type": "string"}},
    },
}


@pytest.fixture(scope="module")
def server() -> Iterator[StandinServer]:
    with running() as serving:
        yield serving


@pytest.fixture
def tenant(server: StandinServer) -> Tenant:
    return Tenant(f"http://127.0.0.1:{server.server_address[1]}")


def post(tenant: Tenant, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    headers = {"x-api-key": tenant.key, "authorization": f"Bearer {tenant.key}", **headers}
    return httpx.post(f"{tenant.base_url}{path}", json=body, headers=headers, timeout=10)


def sse(text: str) -> list[tuple[str | None, Any]]:
    """(event name, parsed data) of every server-sent event."""
    found: list[tuple[str | None, Any]] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        event = None
        data = []
        for line in block.splitlines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        payload = "\n".join(data)
        found.append((event, payload if payload == "[DONE]" else json.loads(payload)))
    return found


# -- Anthropic Messages ---------------------------------------------------------------------


def test_anthropic_stream_is_the_documented_event_sequence(tenant: Tenant) -> None:
    tenant.answer("Hello there, this is a longer answer in pieces.", input_tokens=7)
    body = {"model": "claude-x", "stream": True, "tools": [BASH], "messages": []}
    response = post(tenant, "/v1/messages?beta=true", body)
    assert response.headers["content-type"] == "text/event-stream"
    events = sse(response.text)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert all(data["type"] == name for name, data in events)
    start = events[0][1]["message"]
    assert start["role"] == "assistant" and start["content"] == [] and start["model"] == "claude-x"
    assert start["usage"]["input_tokens"] == 7
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert all(d["type"] == "text_delta" for d in deltas)
    assert "".join(d["text"] for d in deltas) == "Hello there, this is a longer answer in pieces."
    end = events[-2][1]
    assert end["delta"]["stop_reason"] == "end_turn"
    assert end["usage"]["output_tokens"] == 30


def test_anthropic_tool_use_streams_its_input_as_json_deltas(tenant: Tenant) -> None:
    tenant.shell("echo hi > /workspace/x", "done")
    body = {"model": "m", "stream": True, "tools": [BASH], "messages": []}
    events = sse(post(tenant, "/v1/messages", body).text)
    (opening,) = [data for name, data in events if name == "content_block_start"]
    block = opening["content_block"]
    assert (block["type"], block["name"], block["input"]) == ("tool_use", "Bash", {})
    assert block["id"].startswith("toolu_")
    pieces = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert all(p["type"] == "input_json_delta" for p in pieces)
    arguments = json.loads("".join(p["partial_json"] for p in pieces))
    assert arguments["command"] == "echo hi > /workspace/x"
    assert next(d for n, d in events if n == "message_delta")["delta"]["stop_reason"] == "tool_use"


def test_anthropic_without_stream_answers_one_message(tenant: Tenant) -> None:
    tenant.answer("plain")
    response = post(tenant, "/v1/messages", {"model": "m", "tools": [BASH], "messages": []})
    message = response.json()
    assert (message["type"], message["role"], message["stop_reason"]) == (
        "message",
        "assistant",
        "end_turn",
    )
    assert message["content"] == [{"type": "text", "text": "plain"}]
    assert message["usage"]["input_tokens"] == 120


def test_anthropic_errors_have_the_documented_body(tenant: Tenant) -> None:
    tenant.fail("429")
    limited = post(tenant, "/v1/messages", {"model": "m", "tools": [BASH], "messages": []})
    assert limited.status_code == 429
    assert limited.json() == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": limited.json()["error"]["message"]},
    }
    assert limited.headers["retry-after"]
    tenant.reset()
    tenant.fail("500")
    failed = post(tenant, "/v1/messages", {"model": "m", "tools": [BASH], "messages": []})
    assert (failed.status_code, failed.json()["error"]["type"]) == (500, "api_error")


def test_anthropic_counts_tokens_and_says_hello(tenant: Tenant) -> None:
    counted = post(tenant, "/v1/messages/count_tokens", {"model": "m", "messages": []})
    assert counted.json()["input_tokens"] >= 1
    assert httpx.head(f"{tenant.base_url}/api/hello").status_code == 200


# -- OpenAI Responses -----------------------------------------------------------------------

CODE_MODE = {
    "type": "additional_tools",
    "tools": [
        {
            "type": "namespace",
            "name": "functions",
            "tools": [{"type": "custom", "name": "exec", "format": {"type": "grammar"}}],
        }
    ],
}


def test_responses_stream_is_the_documented_event_sequence(tenant: Tenant) -> None:
    tenant.answer("An answer from the Responses API.", input_tokens=11, output_tokens=5)
    body = {"model": "gpt-x", "stream": True, "input": [CODE_MODE]}
    events = sse(post(tenant, "/v1/responses", body).text)
    names = [name for name, _ in events]
    assert names[:5] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert names[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert "[DONE]" not in [data for _, data in events]
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    text = "".join(d["delta"] for n, d in events if n == "response.output_text.delta")
    assert text == "An answer from the Responses API."
    created = events[0][1]["response"]
    assert (created["status"], created["output"], created["model"]) == ("in_progress", [], "gpt-x")
    done = events[-1][1]["response"]
    assert done["status"] == "completed"
    assert done["usage"]["input_tokens"] == 11
    assert done["usage"]["output_tokens"] == 5
    assert done["usage"]["total_tokens"] == 16
    assert done["output"][0]["content"][0] == {
        "type": "output_text",
        "text": text,
        "annotations": [],
    }


def test_responses_code_mode_tool_call_is_a_custom_tool_call_in_its_namespace(
    tenant: Tenant,
) -> None:
    tenant.shell("ls /workspace", "listed")
    events = sse(post(tenant, "/v1/responses", {"stream": True, "input": [CODE_MODE]}).text)
    names = [name for name, _ in events]
    assert "response.custom_tool_call_input.delta" in names
    assert "response.custom_tool_call_input.done" in names
    (item,) = [d["item"] for n, d in events if n == "response.output_item.done"]
    assert (item["type"], item["name"], item["namespace"]) == (
        "custom_tool_call",
        "exec",
        "functions",
    )
    assert item["call_id"].startswith("call_")
    assert "tools.exec_command" in item["input"] and "ls /workspace" in item["input"]
    pieces = "".join(d["delta"] for n, d in events if n == "response.custom_tool_call_input.delta")
    assert pieces == item["input"]


def test_responses_function_tool_call_streams_its_arguments(tenant: Tenant) -> None:
    tenant.shell("pwd", "ok")
    tools = [
        {"type": "function", "name": "exec_command", "parameters": {"properties": {"cmd": {}}}}
    ]
    events = sse(post(tenant, "/v1/responses", {"stream": True, "tools": tools, "input": []}).text)
    (item,) = [d["item"] for n, d in events if n == "response.output_item.done"]
    assert (item["type"], item["name"]) == ("function_call", "exec_command")
    assert json.loads(item["arguments"]) == {"cmd": "pwd"}
    pieces = "".join(d["delta"] for n, d in events if n == "response.function_call_arguments.delta")
    assert pieces == item["arguments"]


def test_responses_rate_limit_is_openais_error_body(tenant: Tenant) -> None:
    tenant.fail("429")
    response = post(tenant, "/v1/responses", {"stream": True, "input": [CODE_MODE]})
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


# -- Gemini ---------------------------------------------------------------------------------

GEMINI_TOOLS = [
    {
        "functionDeclarations": [
            {
                "name": "write_file",
                "parametersJsonSchema": {
                    "type": "object",
                    "properties": {"file_path": {}, "content": {}},
                },
            },
            {"name": "run_shell_command", "parametersJsonSchema": {"properties": {"command": {}}}},
        ]
    }
]


def gemini(tenant: Tenant, method: str, body: dict[str, Any], query: str = "") -> httpx.Response:
    path = f"/v1beta/models/gemini-x:{method}{query}"
    return post(tenant, path, body, **{"x-goog-api-key": tenant.key})


def test_gemini_stream_is_data_only_chunks_ending_with_stop_and_usage(tenant: Tenant) -> None:
    tenant.answer("Streamed from Gemini in several chunks of text.", input_tokens=9)
    body = {"contents": [], "tools": GEMINI_TOOLS}
    events = sse(gemini(tenant, "streamGenerateContent", body, "?alt=sse").text)
    assert len(events) > 1 and all(name is None for name, _ in events)
    texts = [data["candidates"][0]["content"]["parts"][0]["text"] for _, data in events]
    assert "".join(texts) == "Streamed from Gemini in several chunks of text."
    assert all(data["candidates"][0]["content"]["role"] == "model" for _, data in events)
    assert "finishReason" not in events[0][1]["candidates"][0]
    last = events[-1][1]
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert last["usageMetadata"] == {
        "promptTokenCount": 9,
        "candidatesTokenCount": 30,
        "totalTokenCount": 39,
    }


def test_gemini_function_call_part_uses_the_declared_parameters(tenant: Tenant) -> None:
    tenant.write("/workspace/a.txt", "A", then="written")
    body = {"contents": [], "tools": GEMINI_TOOLS}
    events = sse(gemini(tenant, "streamGenerateContent", body, "?alt=sse").text)
    call = events[-1][1]["candidates"][0]["content"]["parts"][0]["functionCall"]
    assert call == {"name": "write_file", "args": {"file_path": "/workspace/a.txt", "content": "A"}}


def test_gemini_schema_side_calls_get_a_schema_instance_and_leave_the_script(
    tenant: Tenant,
) -> None:
    tenant.answer("the scripted answer")
    schema = {
        "type": "OBJECT",
        "properties": {
            "reasoning": {"type": "STRING"},
            "next_speaker": {"type": "STRING", "enum": ["model", "user"]},
            "score": {"type": "INTEGER"},
        },
        "required": ["reasoning", "next_speaker", "score"],
    }
    side = gemini(
        tenant,
        "generateContent",
        {"contents": [], "generationConfig": {"responseJsonSchema": schema}},
    ).json()
    text = side["candidates"][0]["content"]["parts"][0]["text"]
    assert json.loads(text) == {"reasoning": "stand-in", "next_speaker": "user", "score": 1}
    main = gemini(tenant, "generateContent", {"contents": [], "tools": GEMINI_TOOLS}).json()
    assert main["candidates"][0]["content"]["parts"] == [{"text": "the scripted answer"}]


def test_gemini_without_sse_streams_a_json_array_and_errors_have_a_status(tenant: Tenant) -> None:
    tenant.answer("array")
    chunks = gemini(tenant, "streamGenerateContent", {"contents": []}).json()
    assert isinstance(chunks, list) and chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    tenant.fail("429")
    limited = gemini(tenant, "streamGenerateContent", {"contents": []}, "?alt=sse")
    assert limited.status_code == 429
    assert limited.json()["error"] == {
        "code": 429,
        "message": limited.json()["error"]["message"],
        "status": "RESOURCE_EXHAUSTED",
    }


# -- OpenAI chat completions ----------------------------------------------------------------


def test_chat_completion_without_stream_is_one_object_with_usage(tenant: Tenant) -> None:
    tenant.answer("chatted", input_tokens=4, output_tokens=2)
    reply = post(tenant, "/v1/chat/completions", {"model": "gpt-4o", "messages": []}).json()
    assert reply["object"] == "chat.completion"
    assert reply["choices"][0]["message"] == {"role": "assistant", "content": "chatted"}
    assert reply["choices"][0]["finish_reason"] == "stop"
    assert reply["usage"] == {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}


def test_chat_completion_stream_has_deltas_usage_and_done(tenant: Tenant) -> None:
    tenant.answer("a streamed chat completion answer")
    body = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
    events = sse(post(tenant, "/v1/chat/completions", {**body, "messages": []}).text)
    assert events[-1] == (None, "[DONE]")
    chunks = [data for _, data in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "a streamed chat completion answer"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 150


def test_chat_completion_tool_calls_stream_id_name_then_arguments(tenant: Tenant) -> None:
    tenant.shell("date", "ok")
    tools = [{"type": "function", "function": {"name": "shell", "parameters": {}}}]
    body = {"model": "m", "stream": True, "tools": tools, "messages": []}
    chunks = [d for _, d in sse(post(tenant, "/v1/chat/completions", body).text)[:-1]]
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert calls[0]["id"].startswith("call_") and calls[0]["function"]["name"] == "shell"
    arguments = json.loads("".join(c["function"]["arguments"] for c in calls))
    assert arguments == {"command": "date"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_chat_write_without_tools_is_an_edit_block_in_the_requested_format(
    tenant: Tenant,
) -> None:
    tenant.write("hello.py", "print('hi')", then=None)
    system = {"role": "system", "content": "Use *SEARCH/REPLACE* blocks."}
    reply = post(tenant, "/v1/chat/completions", {"model": "m", "messages": [system]}).json()
    assert reply["choices"][0]["message"]["content"] == (
        "hello.py\n```\n<<<<<<< SEARCH\n=======\nprint('hi')\n>>>>>>> REPLACE\n```\n"
    )
    tenant.write("whole.txt", "all of it", then=None)
    reply = post(tenant, "/v1/chat/completions", {"model": "m", "messages": []}).json()
    assert reply["choices"][0]["message"]["content"] == "whole.txt\n```\nall of it\n```\n"
