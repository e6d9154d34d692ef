"""The interactive terminal WebSocket (a TTY exec in the agent) on the real engine."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.integration.conftest import PREFIX
from tests.support.engine import Engine
from tests.support.server import ServiceProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def echo(spawn: Callable[..., dict[str, Any]], agent_image: Callable[[str], str]) -> dict[str, Any]:
    return spawn(image=agent_image("echo"), resources={"memory": "128m", "cpu": 0.5})


@contextmanager
def terminal(service: ServiceProcess, agent_id: str, query: str = "") -> Iterator[ClientConnection]:
    url = service.ws_url + f"/ws/agents/{agent_id}/terminal{query}"
    with connect(url, open_timeout=10) as ws:
        yield ws


def screen_until(ws: ClientConnection, wanted: str, within_s: float = 15) -> str:
    """Everything the terminal printed, up to the moment ``wanted`` shows."""
    deadline = time.monotonic() + within_s
    seen = ""
    while wanted not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{wanted!r} never showed; the screen was:\n{seen[-2000:]}")
        data = ws.recv(timeout=left)
        seen += data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return seen


def test_terminal_echoes_typed_keys(service: ServiceProcess, echo: dict[str, Any]) -> None:
    with terminal(service, echo["id"]) as ws:
        for key in b"echo typed-$((6*7))\r":
            ws.send(bytes([key]))
        screen = screen_until(ws, "typed-42\r\n")
    # The keys came back as typed (the PTY echoes them), then the shell ran the line.
    assert "echo typed-$((6*7))" in screen


def test_terminal_honours_resize(service: ServiceProcess, echo: dict[str, Any]) -> None:
    with terminal(service, echo["id"], "?cols=100&rows=30") as ws:
        ws.send(b"stty size\r")
        screen_until(ws, "30 100")
        ws.send(json.dumps({"type": "resize", "cols": 132, "rows": 43}))
        ws.send(b"stty size\r")
        screen_until(ws, "43 132")


def test_terminal_runs_as_the_agent_with_its_env(
    service: ServiceProcess,
    spawn: Callable[..., dict[str, Any]],
    agent_image: Callable[[str], str],
) -> None:
    agent = spawn(
        image=agent_image("echo"),
        resources={"memory": "128m", "cpu": 0.5},
        env={"GREETING": "from-the-secret-file"},
    )
    with terminal(service, agent["id"]) as ws:
        ws.send(b'echo "$(id -un):$GREETING"\r')
        screen_until(ws, "agent:from-the-secret-file")


def test_closing_the_terminal_ends_its_shell(
    service: ServiceProcess, echo: dict[str, Any], engine: Engine
) -> None:
    def shells() -> int:
        code, output = engine.exec(
            echo["containerName"],
            "sh",
            "-c",
            "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' <$f; echo; done 2>/dev/null",
        )
        assert code == 0
        return output.count("/bin/bash -l")

    with terminal(service, echo["id"]) as ws:
        ws.send(b"echo open\r")
        screen_until(ws, "open\r\n")
        assert shells() == 1
    deadline = time.monotonic() + 10
    while shells() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert shells() == 0


def test_terminal_reports_the_exit_code_and_closes(
    service: ServiceProcess, echo: dict[str, Any]
) -> None:
    with terminal(service, echo["id"]) as ws:
        ws.send("exit 3\r")
        deadline = time.monotonic() + 15
        frames: list[Any] = []
        with pytest.raises(ConnectionClosed) as closed:
            while time.monotonic() < deadline:
                frames.append(ws.recv(timeout=deadline - time.monotonic()))
    assert json.loads(frames[-1]) == {"type": "exit", "exitCode": 3}
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000


def test_terminal_to_an_unknown_agent_is_closed_with_404(service: ServiceProcess) -> None:
    with terminal(service, f"{PREFIX}-nobody") as ws:
        error = json.loads(ws.recv(timeout=10))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert error["code"] == "AGENT_NOT_FOUND"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
