"""Metrics on the event WebSocket, against the real engine: a client names the agents it shows
(``watch_metrics``) and gets their CPU and memory in ``agent_metrics`` frames, with no request
per agent; a new watch replaces the last, an empty one stops the rounds, a bad one is answered
with an error frame and the socket goes on."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from websockets.sync.client import ClientConnection

from tests.integration.test_websocket import Frame, frames_until, listen
from tests.support.server import ServiceProcess

pytestmark = pytest.mark.integration

Spawn = Callable[..., dict[str, Any]]


def watch(ws: ClientConnection, agent_ids: list[str], every_s: int = 1) -> None:
    ws.send(json.dumps({"type": "watch_metrics", "agentIds": agent_ids, "everyS": every_s}))


def is_metrics(frame: Frame) -> bool:
    return frame.get("event") == "agent_metrics"


def next_metrics(ws: ClientConnection, within_s: float = 10) -> dict[str, dict[str, Any]]:
    """The agents of the next agent_metrics frame, by id."""
    frame = frames_until(ws, is_metrics, within_s)[-1]
    return {m["agentId"]: m for m in frame["data"]["agents"]}


def test_a_watched_agent_s_metrics_arrive_on_the_socket_against_its_limits(
    service: ServiceProcess, spawn: Spawn
) -> None:
    agent = spawn()
    with listen(service) as ws:
        asked = time.monotonic()
        watch(ws, [agent["id"]], every_s=1)
        first = next_metrics(ws)
        # The first round goes at once, not after the interval.
        assert time.monotonic() - asked < 3
        sample = first[agent["id"]]
        # agent_body's limits: 64m and 0.25 cores.
        assert sample["memoryLimit"] == 64 * 1024 * 1024
        assert sample["cpuLimit"] == 0.25
        assert 0 < sample["memory"] <= sample["memoryLimit"]
        assert sample["pids"] >= 1
        # And again, every second.
        again_from = time.monotonic()
        assert agent["id"] in next_metrics(ws)
        assert time.monotonic() - again_from < 3


def test_a_new_watch_replaces_the_last_and_an_empty_one_stops_the_rounds(
    service: ServiceProcess, spawn: Spawn
) -> None:
    first, second = spawn(), spawn()
    with listen(service) as ws:
        watch(ws, [first["id"], second["id"]])
        assert set(next_metrics(ws)) == {first["id"], second["id"]}
        watch(ws, [second["id"]])
        # A round already on its way may still name both; the next ones name only the second.
        seen = [set(next_metrics(ws)) for _ in range(3)]
        assert seen[-1] == {second["id"]} and seen[-2] == {second["id"]}
        watch(ws, [])
        # A round already on its way may still come; after that, none for several intervals.
        quiet_from = time.monotonic()
        late: list[Frame] = []
        while time.monotonic() - quiet_from < 3.5:
            try:
                late.append(json.loads(ws.recv(timeout=3.5 - (time.monotonic() - quiet_from))))
            except TimeoutError:
                break
        assert len([f for f in late if is_metrics(f)]) <= 1, late


def test_an_agent_that_cannot_be_sampled_is_left_out_of_the_round(
    service: ServiceProcess, spawn: Spawn
) -> None:
    agent = spawn()
    with listen(service) as ws:
        watch(ws, [agent["id"], "agent-nosuchagent"])
        assert set(next_metrics(ws)) == {agent["id"]}


@pytest.mark.parametrize(
    ("control", "words"),
    [
        ("not json", "JSON object"),
        ('{"type": "subscribe"}', "unknown control frame"),
        ('{"type": "watch_metrics", "agentIds": "agent-1"}', "agentIds"),
        ('{"type": "watch_metrics", "agentIds": [], "everyS": 0}', "everyS"),
        ('{"type": "watch_metrics", "agentIds": [], "everyS": 1.5}', "everyS"),
    ],
)
def test_a_bad_control_frame_is_answered_and_the_socket_goes_on(
    service: ServiceProcess, spawn: Spawn, control: str, words: str
) -> None:
    agent = spawn()
    with listen(service) as ws:
        ws.send(control)
        error = json.loads(ws.recv(timeout=10))
        assert error["type"] == "error" and error["code"] == "VALIDATION_ERROR"
        assert words in error["error"]
        watch(ws, [agent["id"]])
        assert agent["id"] in next_metrics(ws)
