"""The bearer-token middleware, the OpenAPI declaration and the serve exposure rule (no engine)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message
from starlette.websockets import WebSocket

from parallax_docker.api.app import create_app
from parallax_docker.api.auth import BearerAuthMiddleware, RedactQueryTokenFilter
from parallax_docker.config import (
    check_exposure,
    is_loopback_host,
    load_settings,
    read_token_file,
)
from parallax_docker.errors import ConfigError
from tests.unit.fakes import FakeDeployment, as_deployment, unit_environ

TOKEN = "tok-0123456789abcdef-XYZ"


async def _echo_http(request: Request) -> JSONResponse:
    return JSONResponse({"query": request.url.query})


async def _echo_ws(websocket: WebSocket) -> None:
    offered = list(websocket.scope.get("subprotocols") or ())
    await websocket.accept()
    await websocket.send_json({"query": websocket.url.query, "subprotocols": offered})
    await websocket.close()


def _guarded() -> ASGIApp:
    app = Starlette(routes=[Route("/echo", _echo_http), WebSocketRoute("/ws", _echo_ws)])
    return BearerAuthMiddleware(app, SecretStr(TOKEN))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(_guarded())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def _bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def websocket(
    app: ASGIApp,
    query: str = "",
    headers: dict[str, str] | None = None,
    subprotocols: list[str] | None = None,
) -> list[Message]:
    """Drive one WebSocket handshake through ``app``; return what the app sent."""
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "subprotocols": subprotocols or [],
        "server": ("test", 80),
        "client": ("test", 1234),
    }
    inbox: list[Message] = [{"type": "websocket.connect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        if inbox:
            return inbox.pop(0)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "websocket.close":
            inbox.append({"type": "websocket.disconnect", "code": message.get("code", 1000)})

    await asyncio.wait_for(app(scope, receive, send), timeout=5)
    return sent


def _closed_with(sent: list[Message]) -> int | None:
    return next((m.get("code", 1000) for m in sent if m["type"] == "websocket.close"), None)


def _json_sent(sent: list[Message]) -> Any:
    return json.loads(next(m["text"] for m in sent if m["type"] == "websocket.send"))


# -- HTTP ---------------------------------------------------------------------------------------


async def test_http_without_a_token_is_401_unauthorized_with_a_challenge(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/echo")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["code"] == "UNAUTHORIZED"
    assert set(body) == {"error", "code", "resolution"}


async def test_http_with_a_wrong_token_is_401(client: httpx.AsyncClient) -> None:
    assert (await client.get("/echo", headers=_bearer(TOKEN + "x"))).status_code == 401


async def test_http_with_a_token_prefix_is_401(client: httpx.AsyncClient) -> None:
    assert (await client.get("/echo", headers=_bearer(TOKEN[:-1]))).status_code == 401


async def test_http_with_another_scheme_is_401(client: httpx.AsyncClient) -> None:
    basic = base64.b64encode(f"user:{TOKEN}".encode()).decode()
    response = await client.get("/echo", headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 401


async def test_http_with_an_empty_bearer_is_401(client: httpx.AsyncClient) -> None:
    assert (await client.get("/echo", headers={"Authorization": "Bearer "})).status_code == 401


async def test_http_with_the_token_passes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/echo", headers=_bearer())).status_code == 200


async def test_http_bearer_scheme_is_case_insensitive(client: httpx.AsyncClient) -> None:
    response = await client.get("/echo", headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status_code == 200


async def test_http_does_not_take_the_token_from_the_query(client: httpx.AsyncClient) -> None:
    assert (await client.get("/echo", params={"token": TOKEN})).status_code == 401


async def test_the_401_body_does_not_echo_the_presented_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/echo", headers=_bearer("presented-secret-value-1234"))
    assert "presented-secret-value-1234" not in response.text


# -- WebSocket ----------------------------------------------------------------------------------


async def test_websocket_without_a_token_is_closed_with_1008() -> None:
    sent = await websocket(_guarded())
    assert _closed_with(sent) == 1008
    assert not any(m["type"] == "websocket.send" for m in sent)


async def test_websocket_with_a_wrong_query_token_is_closed_with_1008() -> None:
    assert _closed_with(await websocket(_guarded(), query="token=wrong-token-000000000")) == 1008


async def test_websocket_accepts_the_authorization_header() -> None:
    sent = await websocket(_guarded(), headers=_bearer())
    assert _json_sent(sent)["query"] == ""
    assert _closed_with(sent) == 1000


async def test_websocket_accepts_a_query_token_and_hides_it_from_the_app() -> None:
    sent = await websocket(_guarded(), query=f"token={TOKEN}&since=5")
    assert _json_sent(sent)["query"] == "since=5"


async def test_websocket_accepts_the_subprotocol_form_and_answers_bearer() -> None:
    encoded = base64.urlsafe_b64encode(TOKEN.encode()).decode().rstrip("=")
    sent = await websocket(_guarded(), subprotocols=["bearer", f"bearer.{encoded}"])
    accept = next(m for m in sent if m["type"] == "websocket.accept")
    assert accept["subprotocol"] == "bearer"
    # The app never sees the token, nor the auth protocol.
    assert _json_sent(sent)["subprotocols"] == []


async def test_websocket_with_a_wrong_subprotocol_token_is_closed_with_1008() -> None:
    encoded = base64.urlsafe_b64encode(b"not-the-token-000000").decode().rstrip("=")
    sent = await websocket(_guarded(), subprotocols=["bearer", f"bearer.{encoded}"])
    assert _closed_with(sent) == 1008


# -- the app ------------------------------------------------------------------------------------


def _app(token: str | None) -> ASGIApp:
    environ = unit_environ(PARALLAX_API_TOKEN=token) if token else unit_environ()
    return create_app(load_settings(environ=environ), as_deployment(FakeDeployment()))


async def _app_client(token: str | None) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(_app(token)), base_url="http://test")


async def test_every_route_of_the_app_needs_the_token() -> None:
    async with await _app_client(TOKEN) as client:
        schema = (await client.get("/openapi.json", headers=_bearer())).json()
        assert schema["paths"]
        for path, operations in schema["paths"].items():
            concrete = path.replace("{agent_id}", "agent-x")
            for method in operations:
                for prefix in ("", "/api"):
                    response = await client.request(method.upper(), prefix + concrete)
                    assert response.status_code == 401, (method, prefix + path)
        for extra in ("/openapi.json", "/docs", "/no-such-route"):
            assert (await client.get(extra)).status_code == 401


async def test_every_websocket_of_the_app_needs_the_token() -> None:
    assert _closed_with(await websocket(_app(TOKEN))) == 1008


async def test_without_a_token_setting_routes_are_open() -> None:
    async with await _app_client(None) as client:
        assert (await client.get("/openapi.json")).status_code == 200


async def test_the_openapi_document_declares_bearer_auth_and_401() -> None:
    async with await _app_client(TOKEN) as client:
        schema = (await client.get("/openapi.json", headers=_bearer())).json()
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert schema["security"] == [{"bearerAuth": []}]
    for operations in schema["paths"].values():
        for operation in operations.values():
            assert "401" in operation["responses"]
            # The Host/Origin guard answers before any route, so every route can answer 403.
            assert "403" in operation["responses"]


async def test_the_openapi_document_has_no_auth_without_a_token() -> None:
    async with await _app_client(None) as client:
        schema = (await client.get("/openapi.json")).json()
    assert "security" not in schema


# -- settings and serve -------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"])
def test_loopback_hosts_are_recognised(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.com", "localhost.evil"])
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not is_loopback_host(host)


def test_exposure_without_a_token_is_refused() -> None:
    with pytest.raises(ConfigError) as refused:
        check_exposure(load_settings(environ={"HOST": "0.0.0.0"}), insecure=False)
    assert "token" in refused.value.message


def test_exposure_with_insecure_is_allowed() -> None:
    check_exposure(load_settings(environ={"HOST": "0.0.0.0"}), insecure=True)


def test_exposure_with_a_token_is_allowed() -> None:
    settings = load_settings(environ={"HOST": "0.0.0.0", "PARALLAX_API_TOKEN": TOKEN})
    check_exposure(settings, insecure=False)


def test_a_short_token_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={"PARALLAX_API_TOKEN": "short-secret"})
    assert "short-secret" not in refused.value.message


def test_a_token_with_spaces_is_refused() -> None:
    with pytest.raises(ConfigError):
        load_settings(environ={"PARALLAX_API_TOKEN": "a token with spaces in it"})


def test_the_token_is_never_shown_by_the_settings() -> None:
    settings = load_settings(environ={"PARALLAX_API_TOKEN": TOKEN})
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.model_dump())


def test_token_file_is_read_and_stripped(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(f"  {TOKEN}\n")
    assert read_token_file(path) == TOKEN


def test_a_missing_token_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        read_token_file(tmp_path / "absent")


def test_an_empty_token_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("\n")
    with pytest.raises(ConfigError):
        read_token_file(path)


def test_query_tokens_are_redacted_from_log_records() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        "x",
        1,
        '%s - "WebSocket %s" 403',
        ("1.2.3.4", f"/ws?a=1&token={TOKEN}&b=2"),
        None,
    )
    assert RedactQueryTokenFilter().filter(record)
    assert TOKEN not in record.getMessage()
    assert "/ws?a=1&token=[redacted]&b=2" in record.getMessage()


async def test_websocket_with_a_non_ascii_query_token_is_closed_with_1008() -> None:
    assert _closed_with(await websocket(_guarded(), query="token=%E2%82%AC%FF")) == 1008


async def test_websocket_with_a_garbled_subprotocol_token_is_closed_with_1008() -> None:
    assert _closed_with(await websocket(_guarded(), subprotocols=["bearer.%%%", "bearer"])) == 1008
