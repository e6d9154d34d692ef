"""The client's event stream against a small local WebSocket server (no engine, no service).

The server sends the frames the service sends (``{event, data, timestamp}``), checks the bearer
token, and refuses the upgrade with the API's error body when the token is wrong.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from parallax_docker.cli.main import build_app
from parallax_docker.client import AsyncClient, Client, ServiceUnreachableError, UnauthorizedError
from tests.unit.test_client import handle_json

TOKEN = "ws-token"
FRAMES: list[dict[str, Any]] = [
    {"event": "agent_started", "data": {"agent": handle_json("agent-1")}, "timestamp": 1.0},
    {"event": "agent_ready", "data": {"agent": handle_json("agent-1")}, "timestamp": 2.0},
]


class Recorded:
    paths: list[str]

    def __init__(self) -> None:
        self.paths = []


def _check_token(connection: ServerConnection, request: Request) -> Response | None:
    if request.headers.get("Authorization") == f"Bearer {TOKEN}":
        return None
    body = json.dumps({"error": "no token", "code": "UNAUTHORIZED", "resolution": "send it"})
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return Response(401, "Unauthorized", headers, body.encode())


@pytest.fixture
def server() -> Iterator[tuple[str, Recorded]]:
    recorded = Recorded()

    def handler(connection: ServerConnection) -> None:
        assert connection.request is not None
        recorded.paths.append(connection.request.path)
        for frame in FRAMES:
            connection.send(json.dumps(frame))
        connection.close()

    made: Server = serve(handler, "127.0.0.1", 0, process_request=_check_token)
    thread = threading.Thread(target=made.serve_forever, daemon=True)
    thread.start()
    host, port = made.socket.getsockname()[:2]
    try:
        yield f"http://{host}:{port}", recorded
    finally:
        made.shutdown()
        thread.join(5)


def test_events_yield_the_frames_until_the_server_closes(server: tuple[str, Recorded]) -> None:
    url, recorded = server
    with Client(url, token=TOKEN, environ={}) as client, client.events() as stream:
        frames = list(stream)
    assert [f.event for f in frames] == ["agent_started", "agent_ready"]
    assert frames[1].agent is not None and frames[1].agent.id == "agent-1"
    assert recorded.paths == ["/ws"]


def test_events_for_one_agent_use_the_filtered_route(server: tuple[str, Recorded]) -> None:
    url, recorded = server
    with Client(url, token=TOKEN, environ={}) as client:
        list(client.events(agent_id="agent-1", history=5))
    assert recorded.paths == ["/ws/events?agentId=agent-1&history=5"]


def test_a_refused_upgrade_maps_back_to_the_error_class(server: tuple[str, Recorded]) -> None:
    url, _ = server
    with Client(url, token="wrong", environ={}) as client, pytest.raises(UnauthorizedError):
        client.events()


def test_no_server_is_service_unreachable() -> None:
    with (
        Client("http://127.0.0.1:1", environ={}, timeout_s=2) as client,
        pytest.raises(ServiceUnreachableError),
    ):
        client.events()


async def test_async_events_yield_the_frames(server: tuple[str, Recorded]) -> None:
    url, _ = server
    async with AsyncClient(url, token=TOKEN, environ={}) as client, client.events() as stream:
        events = [frame.event async for frame in stream]
    assert events == ["agent_started", "agent_ready"]


async def test_async_refused_upgrade_is_unauthorized(server: tuple[str, Recorded]) -> None:
    url, _ = server
    async with AsyncClient(url, environ={}) as client:
        with pytest.raises(UnauthorizedError):
            async with client.events():
                pass


def test_receive_with_a_bound_times_out(server: tuple[str, Recorded]) -> None:
    url, _ = server
    with Client(url, token=TOKEN, environ={}) as client, client.events() as stream:
        assert stream.receive(timeout_s=5).event == "agent_started"
        assert stream.receive(timeout_s=5).event == "agent_ready"
        with pytest.raises(StopIteration):
            stream.receive(timeout_s=5)


def test_the_events_command_prints_one_line_per_frame(server: tuple[str, Recorded]) -> None:
    url, recorded = server
    result = CliRunner().invoke(
        build_app(),
        ["--url", url, "--token", TOKEN, "events", "--agent", "agent-1", "--count", "2"],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines == [
        "1970-01-01T00:00:01.000Z agent_started agent-1 status=ready",
        "1970-01-01T00:00:02.000Z agent_ready agent-1 status=ready",
    ]
    assert recorded.paths == ["/ws/events?agentId=agent-1"]


def test_the_events_command_without_the_token_exits_7(server: tuple[str, Recorded]) -> None:
    url, _ = server
    result = CliRunner().invoke(
        build_app(), ["--url", url, "events"], env={"PARALLAX_API_TOKEN": None}
    )
    assert result.exit_code == 7
    assert result.stderr.startswith("error [UNAUTHORIZED]: no token\nhint: send it")
