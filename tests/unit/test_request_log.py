"""The request-log middleware: one line per request with an id, never a secret."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, WebSocket
from fastapi.responses import StreamingResponse
from starlette.types import Message

from parallax_docker.api.request_log import RequestLogMiddleware, printable_path, request_id_from

SECRET = "sk-SECRET-value-42"


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(f"{r.getMessage()} {vars(r)}" for r in self.records)


@pytest.fixture
def lines() -> Lines:
    return Lines()


@pytest.fixture
def client(lines: Lines) -> httpx.AsyncClient:
    app = FastAPI()

    @app.get("/agents/{agent_id}")
    async def get_agent(agent_id: str) -> dict[str, str]:
        return {"id": agent_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for n in range(3):
                yield f"{n}\n".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    logger = logging.getLogger("test.request_log")
    logger.handlers[:] = [lines]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    ticks = iter(float(n) for n in range(1000))
    wrapped = RequestLogMiddleware(app, logger=logger, clock=lambda: next(ticks) * 0.0125)
    transport = httpx.ASGITransport(app=wrapped, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_response_carries_a_generated_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/agents/a1")
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32 and int(request_id, 16) >= 0


async def test_a_sane_caller_request_id_is_kept(client: httpx.AsyncClient) -> None:
    response = await client.get("/agents/a1", headers={"X-Request-ID": "trace-1.2:3"})
    assert response.headers["x-request-id"] == "trace-1.2:3"


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "semi;colon", "new\tline"])
async def test_an_odd_caller_request_id_is_replaced(client: httpx.AsyncClient, bad: str) -> None:
    response = await client.get("/agents/a1", headers={"X-Request-ID": bad})
    assert response.headers["x-request-id"] != bad
    assert len(response.headers["x-request-id"]) == 32


async def test_each_request_is_logged_once_with_its_fields(
    client: httpx.AsyncClient, lines: Lines
) -> None:
    response = await client.get("/agents/a1", headers={"X-Request-ID": "r-1"})
    assert len(lines.records) == 1
    record = vars(lines.records[0])
    assert record["request_id"] == "r-1" == response.headers["x-request-id"]
    assert (record["method"], record["path"], record["status"]) == ("GET", "/agents/a1", 200)
    assert record["duration_ms"] == 12.5
    assert lines.records[0].getMessage() == "GET /agents/a1 -> 200 in 12.5 ms"


async def test_query_values_and_header_values_are_never_logged(
    client: httpx.AsyncClient, lines: Lines
) -> None:
    await client.get(
        f"/agents/a1?token={SECRET}",
        headers={"Authorization": f"Bearer {SECRET}", "X-Api-Key": SECRET},
    )
    assert SECRET not in lines.text()
    assert "token" not in lines.text()


async def test_a_failing_request_is_logged_as_500(client: httpx.AsyncClient, lines: Lines) -> None:
    response = await client.get("/boom")
    assert response.status_code == 500
    assert [vars(r)["status"] for r in lines.records] == [500]


async def test_a_streamed_response_is_logged_once_at_its_end(
    client: httpx.AsyncClient, lines: Lines
) -> None:
    response = await client.get("/stream")
    assert response.text == "0\n1\n2\n"
    assert len(lines.records) == 1
    assert vars(lines.records[0])["status"] == 200


def test_request_id_from_takes_only_the_request_id_header() -> None:
    assert request_id_from([(b"x-request-id", b"abc")]) == "abc"
    assert request_id_from([(b"x-other", b"abc")]) != "abc"


def test_printable_path_replaces_control_characters_and_bounds_length() -> None:
    assert printable_path("/a\nb\x1b") == "/a?b?"
    assert printable_path("/" + "x" * 400).endswith("...")
    assert len(printable_path("/" + "x" * 400)) == 259


async def test_a_websocket_is_logged_once_when_it_closes(lines: Lines) -> None:
    app = FastAPI()

    @app.websocket("/ws")
    async def ws(socket: WebSocket) -> None:
        await socket.accept()
        await socket.send_text("hi")
        await socket.close()

    logger = logging.getLogger("test.request_log.ws")
    logger.handlers[:] = [lines]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    incoming: list[Message] = [
        {"type": "websocket.connect"},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": f"token={SECRET}".encode(),
        "headers": [(b"x-request-id", b"ws-1")],
        "scheme": "ws",
        "server": ("test", 80),
        "client": ("127.0.0.1", 5000),
        "subprotocols": [],
    }
    await RequestLogMiddleware(app, logger=logger)(scope, receive, send)
    accept = next(m for m in sent if m["type"] == "websocket.accept")
    assert (b"x-request-id", b"ws-1") in accept["headers"]
    assert len(lines.records) == 1
    record = vars(lines.records[0])
    assert (record["method"], record["path"], record["status"]) == ("WS", "/ws", 101)
    assert SECRET not in lines.text()
