"""The Host and Origin guard as ASGI middleware (api/guard.py), around a tiny app."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from parallax_docker.api.guard import HostOriginGuardMiddleware
from parallax_docker.origins import OriginPolicy

calls: list[str] = []


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    calls.append(scope["path"])
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "frame"})
        await send({"type": "websocket.close", "code": 1000})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _guard(counted: list[str]) -> HostOriginGuardMiddleware:
    policy = OriginPolicy(allowed_origins=["http://ui.test"])
    return HostOriginGuardMiddleware(_app, policy=policy, on_refusal=counted.append)


async def _request(
    headers: dict[str, str], method: str = "POST"
) -> tuple[httpx.Response, list[str]]:
    counted: list[str] = []
    transport = httpx.ASGITransport(_guard(counted))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        return await client.request(method, "/agents", headers=headers), counted


async def test_a_foreign_host_is_refused_before_the_app() -> None:
    calls.clear()
    response, counted = await _request({"Host": "evil.example"})
    assert response.status_code == 403
    assert response.json()["code"] == "HOST_NOT_ALLOWED" and response.json()["resolution"]
    assert calls == [] and counted == ["HOST_NOT_ALLOWED"]


async def test_a_foreign_origin_is_refused_without_cors_headers() -> None:
    calls.clear()
    response, counted = await _request({"Origin": "http://evil.example"})
    assert (response.status_code, response.json()["code"]) == (403, "ORIGIN_NOT_ALLOWED")
    assert "access-control-allow-origin" not in response.headers
    assert calls == [] and counted == ["ORIGIN_NOT_ALLOWED"]


async def test_an_allowed_origin_gets_its_origin_back() -> None:
    response, counted = await _request({"Origin": "http://ui.test"})
    assert response.status_code == 200 and counted == []
    assert response.headers["access-control-allow-origin"] == "http://ui.test"
    assert response.headers["vary"] == "Origin"


async def test_a_preflight_of_an_allowed_origin_is_answered_here() -> None:
    calls.clear()
    response, _ = await _request(
        {
            "Origin": "http://ui.test",
            "Access-Control-Request-Method": "DELETE",
            "Access-Control-Request-Private-Network": "true",
        },
        method="OPTIONS",
    )
    assert response.status_code == 204 and calls == []
    assert response.headers["access-control-allow-origin"] == "http://ui.test"
    assert "DELETE" in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-allow-private-network"] == "true"


async def test_every_answer_refuses_to_be_framed() -> None:
    response, _ = await _request({})
    assert response.headers["x-frame-options"] == "DENY"


async def _websocket(headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    messages = [{"type": "websocket.connect"}]

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "websocket.disconnect"}

    async def send(message: Message) -> None:
        sent.append(dict(message))

    scope = {"type": "websocket", "path": "/ws", "headers": headers, "query_string": b""}
    await _guard([])(scope, receive, send)
    return sent


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([(b"host", b"evil.example")], "HOST_NOT_ALLOWED"),
        ([(b"host", b"localhost"), (b"origin", b"http://evil.example")], "ORIGIN_NOT_ALLOWED"),
    ],
)
async def test_a_refused_websocket_is_closed_with_1008_and_no_frame(
    headers: list[tuple[bytes, bytes]], reason: str
) -> None:
    sent = await _websocket(headers)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert (sent[1]["code"], sent[1]["reason"]) == (1008, reason)


async def test_an_allowed_websocket_reaches_the_route() -> None:
    sent = await _websocket([(b"host", b"localhost:3200"), (b"origin", b"http://localhost:3200")])
    assert any(m["type"] == "websocket.send" for m in sent)
