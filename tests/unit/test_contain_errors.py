"""No exception text from request handling reaches a log (api/errors.ContainErrorsMiddleware).

Starlette's ServerErrorMiddleware answers 500 and then re-raises, so that the server (uvicorn)
logs the exception with its message and traceback. The app must not let it out.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from starlette.types import Message

from parallax_docker.api.app import create_app
from parallax_docker.api.errors import ContainErrorsMiddleware
from parallax_docker.config import load_settings
from tests.unit.fakes import FakeDeployment, as_deployment, image, unit_environ

SECRET = "sk-LEAKED-IN-AN-EXCEPTION-42"


def _all_text(records: list[logging.LogRecord]) -> str:
    text = []
    for record in records:
        text.append(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            text.append(str(record.exc_info[1]))
        if record.exc_text:
            text.append(record.exc_text)
    return "\n".join(text)


async def test_an_unexpected_exception_never_leaves_the_app(
    caplog: pytest.LogCaptureFixture,
) -> None:
    deployment = FakeDeployment()
    fake = deployment.fake
    fake.images["parallax/agent-claude:latest"] = image()
    app = create_app(
        load_settings(environ=unit_environ(LOG_LEVEL="DEBUG")), as_deployment(deployment)
    )
    # raise_app_exceptions=True: the transport raises whatever the app lets out.
    transport = httpx.ASGITransport(app, raise_app_exceptions=True)
    caplog.set_level(logging.DEBUG)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        await asyncio.wait_for(app.state.runtime.reconciler.synced.wait(), timeout=2)
        fake.fail["get_image"] = RuntimeError(f"boom {SECRET}")
        response = await client.post("/agents", json={"name": "n", "type": "claude"})
    assert response.status_code == 500
    assert response.json()["code"] == "INTERNAL_ERROR"
    assert SECRET not in response.text
    assert "RuntimeError" in caplog.text
    assert SECRET not in _all_text(caplog.records)


async def test_a_websocket_exception_ends_with_1011_and_logs_only_the_class(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise ValueError(f"bad {SECRET}")

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    caplog.set_level(logging.DEBUG)
    await ContainErrorsMiddleware(failing)({"type": "websocket"}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1011}]
    assert "ValueError" in caplog.text
    assert SECRET not in _all_text(caplog.records)


async def test_an_exception_after_the_response_started_is_swallowed_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def half(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise KeyError(SECRET)

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    await ContainErrorsMiddleware(half)({"type": "http"}, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start"]
    assert SECRET not in _all_text(caplog.records)
