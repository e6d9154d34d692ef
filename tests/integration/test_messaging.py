"""Sending work to agents on the real engine: the echo agent, busy turns, timeouts, logins.

The echo image (``parallax/agent-echo``) answers every message with exactly its content; with
``PARALLAX_ECHO_DELAY_S`` in its env it waits first, which holds a turn open without a model.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.integration.conftest import PREFIX, agent_body
from tests.support.engine import Engine
from tests.support.server import ServiceProcess

pytestmark = pytest.mark.integration

HOSTILE = (
    "it's \"quoted\" and 'single' and $(touch /tmp/pwned) and `id` and ${HOME} and $HOME\n"
    "newlines\n\n\ttabs\r\nCRLF; rm -rf / && echo done || true | cat > /dev/null\n"
    "backslashes \\ \\n \\\\ and a trailing backslash \\\n"
    "unicode: héllo wörld ✓ 🚀 中文\n"
    "-- --help -p --resume x\n"
)


@pytest.fixture
def echo(
    spawn: Callable[..., dict[str, Any]], agent_image: Callable[[str], str]
) -> Callable[..., dict[str, Any]]:
    """Spawn an echo agent (``delay_s`` holds each turn open that long)."""

    def make(delay_s: float | None = None, **fields: Any) -> dict[str, Any]:
        env = {"PARALLAX_ECHO_DELAY_S": f"{delay_s:g}"} if delay_s is not None else {}
        return spawn(
            image=agent_image("echo"), env=env, resources={"memory": "128m", "cpu": 0.5}, **fields
        )

    return make


def send(api: httpx.Client, agent_id: str, message: str, **fields: Any) -> httpx.Response:
    return api.post(f"/agents/{agent_id}/send", json={"message": message, **fields})


def wait_status(
    api: httpx.Client, agent_id: str, want: str, within_s: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    handle: dict[str, Any] = {}
    while time.monotonic() < deadline:
        handle = api.get(f"/agents/{agent_id}").json()
        if handle.get("status") == want:
            return handle
        time.sleep(0.05)
    raise AssertionError(f"agent {agent_id} never became {want}: {handle.get('status')}")


def test_echo_agent_round_trips_a_hostile_message_exactly(
    api: httpx.Client, echo: Callable[..., dict[str, Any]], engine: Engine
) -> None:
    agent = echo()
    response = send(api, agent["id"], HOSTILE, expectResponse=True, timeout=30_000)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sent"] is True
    answer = body["response"]
    assert answer["content"] == HOSTILE
    assert answer["agentId"] == agent["id"]
    assert answer["direction"] == "outbound"
    assert answer["type"] == "response"
    assert set(answer) == {"id", "agentId", "direction", "type", "content", "metadata", "timestamp"}
    # Nothing in the message was ever run by a shell.
    code, _ = engine.exec(agent["containerName"], "test", "-e", "/tmp/pwned")
    assert code == 1


def test_echo_agent_round_trips_one_megabyte_exactly(
    api: httpx.Client, echo: Callable[..., dict[str, Any]]
) -> None:
    agent = echo()
    block = "line of text with 'quotes' $(x) `y` ✓\n"
    message = (block * (1024 * 1024 // len(block.encode()) + 1))[: 1024 * 1024]
    assert len(message.encode()) >= 1024 * 1024 - 4
    response = send(api, agent["id"], message, expectResponse=True, timeout=60_000)
    assert response.status_code == 200, response.text[:500]
    assert response.json()["response"]["content"] == message


def test_send_without_expect_response_returns_at_once_and_the_answer_lands_in_history(
    api: httpx.Client, echo: Callable[..., dict[str, Any]]
) -> None:
    agent = echo(delay_s=3)
    started = time.monotonic()
    response = send(api, agent["id"], "later, please")
    assert response.status_code == 200, response.text
    assert response.json() == {"sent": True}
    assert time.monotonic() - started < 2.5  # the answer takes at least 3 s
    wait_status(api, agent["id"], "ready")
    messages = api.get(f"/agents/{agent['id']}/messages").json()
    assert [(m["direction"], m["type"], m["content"]) for m in messages["messages"]] == [
        ("inbound", "task", "later, please"),
        ("outbound", "response", "later, please"),
    ]
    assert messages["count"] == 2


def test_agent_is_busy_during_a_turn_and_a_second_send_is_refused_with_409(
    api: httpx.Client, echo: Callable[..., dict[str, Any]]
) -> None:
    agent = echo(delay_s=5)
    assert send(api, agent["id"], "first").status_code == 200
    assert api.get(f"/agents/{agent['id']}").json()["status"] == "busy"
    second = send(api, agent["id"], "second", expectResponse=True)
    assert second.status_code == 409, second.text
    assert second.json()["code"] == "AGENT_BUSY"
    busy = api.get("/agents", params={"status": "busy"}).json()
    assert agent["id"] in [a["id"] for a in busy["agents"]]
    wait_status(api, agent["id"], "ready")
    third = send(api, agent["id"], "third", expectResponse=True, timeout=20_000)
    assert third.json()["response"]["content"] == "third"
    contents = [m["content"] for m in api.get(f"/agents/{agent['id']}/messages").json()["messages"]]
    assert "second" not in contents


def test_a_turn_past_its_timeout_is_interrupted_and_the_agent_stays_usable(
    api: httpx.Client, echo: Callable[..., dict[str, Any]], engine: Engine
) -> None:
    agent = echo(delay_s=4)
    started = time.monotonic()
    response = send(api, agent["id"], "too slow", expectResponse=True, timeout=1000)
    took = time.monotonic() - started
    assert response.status_code == 200, response.text
    answer = response.json()["response"]
    assert answer["type"] == "error"
    assert answer["metadata"]["code"] == "TURN_TIMEOUT"
    assert "interrupted" in answer["content"]
    assert took < 4, f"the timeout did not cut the turn short ({took:.1f}s)"
    # The turn's processes are gone: its `sleep 4` is not left running in the agent.
    code, output = engine.exec(
        agent["containerName"],
        "sh",
        "-c",
        "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' <$f; echo; done 2>/dev/null",
    )
    assert code == 0
    assert "sleep 4" not in output, output
    assert api.get(f"/agents/{agent['id']}").json()["status"] == "ready"
    again = send(api, agent["id"], "patient", expectResponse=True, timeout=30_000)
    assert again.json()["response"]["content"] == "patient"


def test_send_to_an_agent_that_does_not_exist_is_404(api: httpx.Client) -> None:
    response = send(api, f"{PREFIX}-nobody", "hello")
    assert response.status_code == 404
    assert response.json()["code"] == "AGENT_NOT_FOUND"


def test_send_with_an_empty_message_is_422(
    api: httpx.Client, spawn: Callable[..., dict[str, Any]]
) -> None:
    agent = spawn()
    response = send(api, agent["id"], "")
    assert response.status_code == 422
    assert response.json()["code"] == "VALIDATION_ERROR"


def test_custom_image_without_a_turn_command_answers_with_an_error(
    api: httpx.Client, spawn: Callable[..., dict[str, Any]]
) -> None:
    agent = spawn()  # the busybox test image names no PARALLAX_CLI_BIN
    response = send(api, agent["id"], "anyone?", expectResponse=True, timeout=20_000)
    answer = response.json()["response"]
    assert answer["type"] == "error"
    assert answer["metadata"]["code"] == "TURN_FAILED"
    assert "PARALLAX_CLI_BIN" in answer["content"]
    assert api.get(f"/agents/{agent['id']}").json()["status"] == "ready"


@pytest.mark.slow
def test_claude_agent_without_a_key_reports_login_required_instead_of_hanging(
    api: httpx.Client,
    spawn: Callable[..., dict[str, Any]],
    agent_image: Callable[[str], str],
    service: ServiceProcess,
) -> None:
    agent = spawn(
        type="claude", image=agent_image("claude"), resources={"memory": "1g", "cpu": 1.0}
    )
    started = time.monotonic()
    response = send(api, agent["id"], "say hello", expectResponse=True, timeout=90_000)
    took = time.monotonic() - started
    assert response.status_code == 200, response.text
    answer = response.json()["response"]
    assert answer["type"] == "error"
    assert answer["metadata"]["code"] == "LOGIN_REQUIRED"
    assert "loginUrl" in answer["metadata"]
    assert took < 60, f"took {took:.0f}s"
    assert api.get(f"/agents/{agent['id']}").json()["status"] == "authenticating"
    url = service.ws_url + f"/ws/events?agentId={agent['id']}&history=50"
    with connect(url, open_timeout=10) as ws:
        frames = []
        while True:
            frame = json.loads(ws.recv(timeout=10))
            frames.append(frame)
            if frame["event"] == "login_required":
                break
    login = frames[-1]
    assert set(login["data"]) == {"agent", "loginUrl"}
    assert login["data"]["agent"]["id"] == agent["id"]
    assert login["data"]["agent"]["status"] == "authenticating"
    # Still usable: a second message is taken (and answered the same way).
    again = send(api, agent["id"], "still there?", expectResponse=True, timeout=90_000)
    assert again.json()["response"]["metadata"]["code"] == "LOGIN_REQUIRED"


def test_message_history_survives_a_service_restart(
    start_service: Callable[..., ServiceProcess],
    agent_image: Callable[[str], str],
    engine: Engine,
    tmp_path: Path,
) -> None:
    env = {
        "PARALLAX_STATE_DIR": str(tmp_path / "kept-state"),
        "PARALLAX_INSTANCE": f"{PREFIX}-kept",
    }
    first = start_service(env)
    body = agent_body(image=agent_image("echo"), resources={"memory": "128m", "cpu": 0.5})
    with httpx.Client(base_url=first.url, timeout=60) as client:
        made = client.post("/agents", json=body)
        assert made.status_code == 201, made.text
        agent = made.json()
    try:
        with httpx.Client(base_url=first.url, timeout=60) as client:
            for text in ("one", "two"):
                answer = send(client, agent["id"], text, expectResponse=True, timeout=30_000)
                assert answer.json()["response"]["content"] == text
            before = client.get(f"/agents/{agent['id']}/messages").json()["messages"]
        first.stop()
        second = start_service(env)
        with httpx.Client(base_url=second.url, timeout=60) as client:
            after = client.get(f"/agents/{agent['id']}/messages").json()["messages"]
            assert after == before
            assert [m["content"] for m in after] == ["one", "one", "two", "two"]
            # The adopted agent goes on talking, and the conversation grows.
            answer = send(client, agent["id"], "three", expectResponse=True, timeout=30_000)
            assert answer.json()["response"]["content"] == "three"
            assert client.get(f"/agents/{agent['id']}/messages").json()["count"] == 6
    finally:
        engine.remove_container(agent["containerName"])
