"""Live events over WebSockets from the real service: shapes, order, filters, slow clients."""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.support.server import ServiceProcess

pytestmark = pytest.mark.integration

Frame = dict[str, Any]


def ws_url(service: ServiceProcess, path: str) -> str:
    return service.ws_url + path


@contextmanager
def listen(service: ServiceProcess, path: str = "/ws") -> Iterator[ClientConnection]:
    with connect(ws_url(service, path), open_timeout=10, max_size=None) as ws:
        yield ws


def frames_until(
    ws: ClientConnection, done: Callable[[Frame], bool], within_s: float = 30
) -> list[Frame]:
    """Frames as they come, up to and including the first for which ``done`` is true."""
    deadline = time.monotonic() + within_s
    frames: list[Frame] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no closing frame within {within_s}s; got {summary(frames)}")
        frame = json.loads(ws.recv(timeout=left))
        frames.append(frame)
        if done(frame):
            return frames


def agent_of(frame: Frame) -> str | None:
    data = frame["data"]
    if "agent" in data:
        return str(data["agent"]["id"])
    if "message" in data:
        return str(data["message"]["agentId"])
    return None


def summary(frames: list[Frame]) -> list[tuple[str, str | None]]:
    return [(f["event"], agent_of(f)) for f in frames]


def answered(agent_id: str) -> Callable[[Frame], bool]:
    """True at the outbound message of ``agent_id``."""

    def check(frame: Frame) -> bool:
        message = frame["data"].get("message") or {}
        return (
            frame["event"] == "message"
            and message.get("agentId") == agent_id
            and message.get("direction") == "outbound"
        )

    return check


def ready_after_answer(agent_id: str) -> Callable[[Frame], bool]:
    seen = {"answer": False}
    is_answer = answered(agent_id)

    def check(frame: Frame) -> bool:
        if is_answer(frame):
            seen["answer"] = True
            return False
        return seen["answer"] and frame["event"] == "agent_ready" and agent_of(frame) == agent_id

    return check


@pytest.fixture
def echo(
    spawn: Callable[..., dict[str, Any]], agent_image: Callable[[str], str]
) -> Callable[..., dict[str, Any]]:
    def make(**fields: Any) -> dict[str, Any]:
        return spawn(image=agent_image("echo"), resources={"memory": "128m", "cpu": 0.5}, **fields)

    return make


def talk(api: httpx.Client, agent_id: str, message: str) -> str:
    response = api.post(
        f"/agents/{agent_id}/send",
        json={"message": message, "expectResponse": True, "timeout": 30_000},
    )
    assert response.status_code == 200, response.text[:300]
    return str(response.json()["response"]["content"])


def test_two_clients_receive_the_same_events_in_order(
    api: httpx.Client, service: ServiceProcess, echo: Callable[..., dict[str, Any]]
) -> None:
    with listen(service) as first, listen(service) as second:
        agent = echo()
        assert talk(api, agent["id"], "hello") == "hello"
        done = ready_after_answer(agent["id"])
        seen_first = frames_until(first, done)
        seen_second = frames_until(second, ready_after_answer(agent["id"]))
    assert seen_first == seen_second
    mine = [f for f in seen_first if agent_of(f) == agent["id"]]
    events = [f["event"] for f in mine]
    assert events[:2] == ["agent_started", "agent_ready"]
    assert events[-4:] == ["agent_busy", "message", "message", "agent_ready"]
    for frame in mine:
        assert set(frame) == {"event", "data", "timestamp"}
        if frame["event"].startswith("agent_"):
            assert set(frame["data"]) == {"agent"}
            assert frame["data"]["agent"]["id"] == agent["id"]
        else:
            assert set(frame["data"]) == {"message"}
    inbound, outbound = (f["data"]["message"] for f in mine[-3:-1])
    assert (inbound["direction"], inbound["type"], inbound["content"]) == (
        "inbound",
        "task",
        "hello",
    )
    assert (outbound["direction"], outbound["content"]) == ("outbound", "hello")
    assert outbound["agentId"] == agent["id"]
    busy = mine[-4]["data"]["agent"]
    assert busy["status"] == "busy"
    assert mine[-1]["data"]["agent"]["status"] == "ready"


def test_agent_filter_delivers_only_that_agents_events(
    api: httpx.Client, service: ServiceProcess, echo: Callable[..., dict[str, Any]]
) -> None:
    watched, other = echo(), echo()
    with listen(service, f"/ws/events?agentId={watched['id']}") as ws:
        talk(api, other["id"], "not for you")
        talk(api, watched["id"], "for you")
        frames = frames_until(ws, ready_after_answer(watched["id"]))
    assert {agent_of(f) for f in frames} == {watched["id"]}
    assert [f["event"] for f in frames] == ["agent_busy", "message", "message", "agent_ready"]


def test_a_late_client_can_ask_for_recent_history(
    api: httpx.Client, service: ServiceProcess, echo: Callable[..., dict[str, Any]]
) -> None:
    agent = echo()
    with listen(service, f"/ws/events?agentId={agent['id']}") as live:
        talk(api, agent["id"], "remember me")
        seen = frames_until(live, ready_after_answer(agent["id"]))
    with listen(service, f"/ws/events?agentId={agent['id']}&history=4") as late:
        replay = [json.loads(late.recv(timeout=10)) for _ in range(4)]
    assert replay == seen[-4:]
    assert replay[1]["data"]["message"]["content"] == "remember me"


def test_history_is_served_under_the_api_prefix_for_all_agents(
    api: httpx.Client, service: ServiceProcess, echo: Callable[..., dict[str, Any]]
) -> None:
    agent = echo()
    talk(api, agent["id"], "prefixed")
    with listen(service, "/api/ws?history=50") as ws:
        frames = frames_until(ws, ready_after_answer(agent["id"]), within_s=10)
    assert answered(agent["id"])(frames[-2])


def test_agent_stopped_carries_reason_and_exit_code(
    api: httpx.Client, service: ServiceProcess, echo: Callable[..., dict[str, Any]]
) -> None:
    agent = echo()
    with listen(service, f"/ws/events?agentId={agent['id']}") as ws:
        assert api.delete(f"/agents/{agent['id']}").status_code == 204
        frames = frames_until(
            ws, lambda f: f["event"] == "agent_stopped" and f["data"]["reason"] == "deleted"
        )
        # The exit the DELETE causes is reported once, by the DELETE; nothing follows it.
        with pytest.raises(TimeoutError):
            frames.append(json.loads(ws.recv(timeout=1.0)))
    stopped = [f["data"] for f in frames if f["event"] == "agent_stopped"]
    assert len(stopped) == 1, summary(frames)
    assert set(stopped[0]) == {"agent", "reason", "exitCode"}
    assert stopped[0]["agent"]["id"] == agent["id"]
    assert stopped[0]["exitCode"] is not None


def test_a_bad_history_value_is_refused_with_an_error_frame(service: ServiceProcess) -> None:
    with listen(service, "/ws?history=lots") as ws:
        error = json.loads(ws.recv(timeout=10))
        assert error["type"] == "error"
        assert error["code"] == "VALIDATION_ERROR"
        with pytest.raises(Exception) as closed:
            ws.recv(timeout=10)
    assert getattr(closed.value, "rcvd", None) is not None
    assert closed.value.rcvd.code == 4422  # type: ignore[attr-defined]


def _stalled_client(service: ServiceProcess) -> socket.socket:
    """A WebSocket client on /ws that completes the handshake and then never reads."""
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{service.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, "the service closed the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def test_a_client_that_never_reads_does_not_delay_send_for_others(
    api: httpx.Client, service: ServiceProcess, echo: Callable[..., dict[str, Any]]
) -> None:
    agent = echo()
    turns = 16
    # Each turn puts two 256 KiB message events on the stream: 8 MiB for the stalled client,
    # far more than its socket buffers take.
    payload = "x" * (256 * 1024)
    stalled = _stalled_client(service)
    try:
        with listen(service, f"/ws/events?agentId={agent['id']}") as reader:
            took: list[float] = []
            for number in range(turns):
                message = f"{number}:{payload}"
                started = time.monotonic()
                assert talk(api, agent["id"], message) == message
                took.append(time.monotonic() - started)
            answers: list[str] = []
            while len(answers) < turns:
                frame = frames_until(reader, answered(agent["id"]))[-1]
                answers.append(frame["data"]["message"]["content"].split(":", 1)[0])
    finally:
        stalled.close()
    assert answers == [str(n) for n in range(turns)]
    assert max(took) < 5, f"a send took {max(took):.1f}s with a stalled client connected"
    assert sum(took) < 30, f"{turns} sends took {sum(took):.1f}s"
    # And the service is still answering everyone.
    assert api.get("/health").status_code == 200
