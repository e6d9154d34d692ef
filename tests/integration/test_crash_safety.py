"""Crash safety on the real engine: the service killed with SIGKILL at each step of each
operation (``PARALLAX_FAILPOINTS`` makes it kill itself right after it journals that step), then
started again on the same state.

Each test checks what the issue asks: within a bounded time every agent is ready or gone with an
event saying why, every caller that got a success has a working agent, every failed call
succeeds when retried, and nothing is left behind.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.integration.conftest import PREFIX, agent_body
from tests.support.engine import Engine
from tests.support.images import AGENT_IMAGE
from tests.support.polling import poll
from tests.support.server import ServiceProcess

StartService = Callable[..., ServiceProcess]
SETTLE_S = 60
LIVE = ("pending", "starting", "stopping")


class Crashable:
    """A service that may kill itself at a failpoint, and its successor on the same state."""

    def __init__(self, start: StartService, state_dir: Path, name: str) -> None:
        self.start_service = start
        self.instance = f"{PREFIX}-{name}-{uuid.uuid4().hex[:4]}"
        self.env = {
            "PARALLAX_INSTANCE": self.instance,
            "PARALLAX_STATE_DIR": str(state_dir),
            "PARALLAX_READY_TIMEOUT_S": "20",
            "PARALLAX_STOP_GRACE_S": "1",
            "PARALLAX_JANITOR_INTERVAL_S": "0.2",
        }

    def start(self, **extra: str) -> ServiceProcess:
        return self.start_service({**self.env, **extra})

    def agents(self, proc: ServiceProcess) -> dict[str, dict[str, Any]]:
        listed = httpx.get(proc.url + "/agents", timeout=10).json()["agents"]
        return {a["id"]: a for a in listed}


def _died(proc: ServiceProcess) -> int | None:
    assert proc.process is not None
    return proc.process.wait(60)


def _concurrently(calls: list[Callable[[], int]]) -> list[int]:
    """Run ``calls`` at once; each result is a status code, or -1 when the connection broke."""
    results = [0] * len(calls)

    def run(index: int) -> None:
        try:
            results[index] = calls[index]()
        except httpx.TransportError:
            results[index] = -1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


class _Watch:
    """Every event a process sends on /ws from now until it dies, gathered in a thread."""

    def __init__(self, proc: ServiceProcess) -> None:
        self.frames: list[dict[str, Any]] = []
        self._url = proc.ws_url + "/ws"
        self._open = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self._open.wait(15), "the event stream did not open"

    def _read(self) -> None:
        with (
            contextlib.suppress(ConnectionClosed, OSError),
            connect(self._url, open_timeout=10, proxy=None) as ws,
        ):
            self._open.set()
            for message in ws:
                self.frames.append(json.loads(message))

    def until_closed(self, timeout_s: float = 15) -> list[dict[str, Any]]:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the event stream stayed open"
        return self.frames


def _history(proc: ServiceProcess, count: int) -> list[dict[str, Any]]:
    """The last ``count`` events the (restarted) service kept."""
    url = f"{proc.ws_url}/ws?history={count}"
    frames: list[dict[str, Any]] = []
    with connect(url, open_timeout=10, proxy=None) as ws:
        while True:
            try:
                message = ws.recv(timeout=1)
            except TimeoutError:
                return frames
            frames.append(json.loads(message))


def _containers(engine: Engine, instance: str) -> list[dict[str, Any]]:
    return engine.containers(f"parallax.instance={instance}")


@pytest.fixture
def crashable(
    start_service: StartService, tmp_path: Path, engine: Engine
) -> Iterator[Callable[[str], Crashable]]:
    made: list[Crashable] = []

    def make(name: str) -> Crashable:
        made.append(Crashable(start_service, tmp_path / f"state-{len(made)}", name))
        return made[-1]

    yield make
    for crash in made:
        for container in _containers(engine, crash.instance):
            engine.remove_container(container["Id"])


# -- spawn ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["spawn.begun@12", "spawn.created@12", "spawn.started@12"])
def test_thirty_spawns_killed_mid_way_converge_and_every_retry_succeeds(
    crashable: Callable[[str], Crashable], engine: Engine, point: str
) -> None:
    crash = crashable("spawn")
    first = crash.start(PARALLAX_FAILPOINTS=point)
    bodies = [agent_body(id=f"s{i}-{uuid.uuid4().hex[:6]}") for i in range(30)]
    results = _concurrently(
        [
            lambda b=body: httpx.post(first.url + "/agents", json=b, timeout=90).status_code  # type: ignore[misc]
            for body in bodies
        ]
    )
    assert _died(first) == -signal.SIGKILL
    second = crash.start()

    # Within a bounded time: every agent ready or gone, none half-made, nothing held.
    def settled() -> dict[str, dict[str, Any]]:
        return crash.agents(second)

    agents = poll(
        settled,
        lambda found: all(a["status"] not in LIVE for a in found.values()),
        timeout_s=SETTLE_S,
    )
    assert all(a["status"] == "ready" for a in agents.values()), agents
    for container in _containers(engine, crash.instance):
        assert container["State"] == "running"
        assert container["Labels"]["parallax.agent.id"] in agents
    # Every caller told 201 has a working agent.
    answered = [b["id"] for b, code in zip(bodies, results, strict=True) if code == 201]
    for agent_id in answered:
        assert agents[agent_id]["status"] == "ready"
    # Gone agents were reported, with why.
    gone = {b["id"] for b in bodies} - set(agents)
    if gone:
        stopped = {
            f["data"]["agent"]["id"]: f["data"]
            for f in _history(second, 500)
            if f["event"] == "agent_stopped"
        }
        for agent_id in gone & set(stopped):
            assert stopped[agent_id]["reason"] == "spawn_interrupted"
    # Every call made again with the same body succeeds, with one container per id.
    retried = _concurrently(
        [
            lambda b=body: httpx.post(second.url + "/agents", json=b, timeout=90).status_code  # type: ignore[misc]
            for body in bodies
        ]
    )
    assert retried == [201] * len(bodies)
    per_id: dict[str, int] = {}
    for container in _containers(engine, crash.instance):
        agent_id = container["Labels"]["parallax.agent.id"]
        per_id[agent_id] = per_id.get(agent_id, 0) + 1
    assert per_id == {b["id"]: 1 for b in bodies}


# -- stop ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["stop.begun@12", "stop.stopped@12"])
def test_thirty_stops_killed_mid_way_are_finished_and_retries_succeed(
    crashable: Callable[[str], Crashable], engine: Engine, point: str
) -> None:
    crash = crashable("stop")
    setup = crash.start()
    bodies = [agent_body(id=f"t{i}-{uuid.uuid4().hex[:6]}") for i in range(30)]
    made = _concurrently(
        [
            lambda b=body: httpx.post(setup.url + "/agents", json=b, timeout=90).status_code  # type: ignore[misc]
            for body in bodies
        ]
    )
    assert made == [201] * 30
    setup.stop()
    first = crash.start(PARALLAX_FAILPOINTS=point)
    # Stops the first process finished before it died are told by it (events are not kept
    # across a restart); those it left are finished, and told, by the second.
    watch = _Watch(first)
    _concurrently(
        [
            lambda b=body: httpx.delete(f"{first.url}/agents/{b['id']}", timeout=90).status_code  # type: ignore[misc]
            for body in bodies
        ]
    )
    assert _died(first) == -signal.SIGKILL
    told_by_first = watch.until_closed()
    second = crash.start()
    # Every stop that had begun is finished; no agent is left stopping. (Stops whose request
    # never got that far were never made: those agents simply run on.)
    agents = poll(
        lambda: crash.agents(second),
        lambda found: all(a["status"] not in LIVE for a in found.values()),
        timeout_s=SETTLE_S,
    )
    assert len(agents) <= 30 - 12, sorted(agents)
    running = {c["Labels"]["parallax.agent.id"] for c in _containers(engine, crash.instance)}
    assert running == set(agents)
    stopped = {
        f["data"]["agent"]["id"]
        for f in [*told_by_first, *_history(second, 500)]
        if f["event"] == "agent_stopped"
    }
    assert {b["id"] for b in bodies} - set(agents) <= stopped
    # Each stop answers 204 when made again, and then nothing is left.
    for body in bodies:
        again = httpx.delete(f"{second.url}/agents/{body['id']}", timeout=30)
        assert again.status_code == 204, again.text
    assert _containers(engine, crash.instance) == []


# -- restart -------------------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["restart.begun", "restart.restarted"])
def test_a_restart_killed_mid_way_is_finished(
    crashable: Callable[[str], Crashable], point: str
) -> None:
    crash = crashable("restart")
    first = crash.start(PARALLAX_FAILPOINTS=point)
    agent = httpx.post(first.url + "/agents", json=agent_body(), timeout=60).json()
    with pytest.raises(httpx.TransportError):
        httpx.post(f"{first.url}/agents/{agent['id']}/restart", timeout=60)
    assert _died(first) == -signal.SIGKILL
    second = crash.start()
    back = poll(
        lambda: crash.agents(second).get(agent["id"], {}),
        lambda a: a.get("status") == "ready",
        timeout_s=SETTLE_S,
    )
    assert back["containerId"] == agent["containerId"]
    retried = httpx.post(f"{second.url}/agents/{agent['id']}/restart", timeout=60)
    assert retried.status_code == 200 and retried.json()["status"] == "ready"


# -- warm pool claim -----------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["spawn.taken", "spawn.pending", "spawn.claimed"])
def test_a_claim_killed_mid_way_leaves_no_pooled_agent_and_the_retry_succeeds(
    crashable: Callable[[str], Crashable], engine: Engine, point: str
) -> None:
    crash = crashable("claim")
    pool = f"custom={AGENT_IMAGE}:1"
    first = crash.start(PARALLAX_POOL=pool, PARALLAX_FAILPOINTS=point)
    poll(
        lambda: [
            c
            for c in _containers(engine, crash.instance)
            if c["Labels"].get("parallax.pool") == "true" and c["State"] == "running"
        ],
        bool,
        timeout_s=30,
    )
    body = agent_body(image=AGENT_IMAGE, labels={})
    body.pop("labels")  # labels make a spawn unfit for the pool
    body["id"] = f"p-{uuid.uuid4().hex[:6]}"
    with pytest.raises(httpx.TransportError):
        httpx.post(first.url + "/agents", json=body, timeout=60)
    assert _died(first) == -signal.SIGKILL
    second = crash.start(PARALLAX_POOL=pool)
    poll(
        lambda: crash.agents(second),
        lambda agents: body["id"] not in agents,
        timeout_s=SETTLE_S,
    )
    retried = httpx.post(second.url + "/agents", json=body, timeout=60)
    assert retried.status_code == 201, retried.text
    assert retried.json()["status"] == "ready"
    httpx.delete(f"{second.url}/agents/{body['id']}", timeout=30)


# -- execution clean-up --------------------------------------------------------------------------


def test_an_execution_clean_up_killed_mid_way_is_finished(
    crashable: Callable[[str], Crashable], engine: Engine
) -> None:
    crash = crashable("exec")
    execution = f"{PREFIX}-x{uuid.uuid4().hex[:6]}"
    setup = crash.start()
    for volume in ("a", "b"):
        body = agent_body(executionId=execution, volumes=[f"{execution}-{volume}:/data/{volume}"])
        agent = httpx.post(setup.url + "/agents", json=body, timeout=60).json()
        assert httpx.delete(f"{setup.url}/agents/{agent['id']}", timeout=30).status_code == 204
    setup.stop()
    first = crash.start(PARALLAX_FAILPOINTS="execution.removed")
    with pytest.raises(httpx.TransportError):
        httpx.delete(f"{first.url}/executions/{execution}/resources", timeout=30)
    assert _died(first) == -signal.SIGKILL
    assert any(execution in v["Name"] for v in engine.volumes()), "one volume is left"
    crash.start()
    poll(
        lambda: [v["Name"] for v in engine.volumes() if execution in v["Name"]],
        lambda left: left == [],
        timeout_s=SETTLE_S,
    )


# -- turns ---------------------------------------------------------------------------------------


def test_a_turn_killed_mid_way_is_answered_interrupted_and_its_cli_ended(
    crashable: Callable[[str], Crashable], engine: Engine, agent_image: Callable[[str], str]
) -> None:
    crash = crashable("turn")
    first = crash.start(PARALLAX_FAILPOINTS="turn.running")
    body = agent_body(
        image=agent_image("echo"),
        env={"PARALLAX_ECHO_HOLD_S": "30"},
        resources={"memory": "128m", "cpu": 0.5},
    )
    agent = httpx.post(first.url + "/agents", json=body, timeout=60).json()
    # The echo agent prints the message at once, then holds the turn open for 30 s.
    with pytest.raises(httpx.TransportError):
        httpx.post(
            f"{first.url}/agents/{agent['id']}/send",
            json={"message": "half said", "expectResponse": True, "timeout": 60_000},
            timeout=60,
        )
    assert _died(first) == -signal.SIGKILL
    second = crash.start()
    messages = poll(
        lambda: httpx.get(f"{second.url}/agents/{agent['id']}/messages", timeout=10).json()[
            "messages"
        ],
        lambda found: len(found) == 2,
        timeout_s=SETTLE_S,
    )
    answer = messages[-1]
    assert answer["type"] == "error" and answer["metadata"]["code"] == "TURN_INTERRUPTED"
    assert answer["metadata"]["status"] == "interrupted"
    assert "half said" in answer["content"]
    assert crash.agents(second)[agent["id"]]["status"] == "ready"
    code, output = engine.exec(
        agent["containerName"],
        "sh",
        "-c",
        "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' <$f; echo; done 2>/dev/null",
    )
    assert code == 0 and "sleep 30" not in output, output
    again = httpx.post(
        f"{second.url}/agents/{agent['id']}/send",
        json={"message": "next", "expectResponse": False},
        timeout=30,
    )
    assert again.status_code == 200, again.text


# -- many rounds ---------------------------------------------------------------------------------

# Each round runs 5 spawns and 5 stops at once: counts stay within what a round reaches.
ROUNDS = (
    "spawn.begun@4",
    "spawn.created@3",
    "spawn.started@2",
    "stop.begun@2",
    "stop.stopped@3",
    "spawn.created@5",
)


def _one_round(crash: Crashable, engine: Engine, round_no: int, point: str) -> None:
    bodies = [agent_body(id=f"r{round_no}-{i}-{uuid.uuid4().hex[:4]}") for i in range(10)]
    # Half the agents exist already, so that stops run beside the spawns.
    setup = crash.start()
    for body in bodies[:5]:
        made = httpx.post(setup.url + "/agents", json=body, timeout=90)
        assert made.status_code == 201, (point, made.text)
    setup.stop()
    first = crash.start(PARALLAX_FAILPOINTS=point)

    def spawn(body: dict[str, Any]) -> Callable[[], int]:
        return lambda: httpx.post(first.url + "/agents", json=body, timeout=90).status_code

    def stop(body: dict[str, Any]) -> Callable[[], int]:
        return lambda: httpx.delete(f"{first.url}/agents/{body['id']}", timeout=90).status_code

    _concurrently([spawn(b) for b in bodies[5:]] + [stop(b) for b in bodies[:5]])
    assert _died(first) == -signal.SIGKILL, point
    second = crash.start()
    poll(
        lambda: crash.agents(second),
        lambda found: all(a["status"] not in LIVE for a in found.values()),
        timeout_s=SETTLE_S,
    )
    # Every call made again succeeds: the spawns, then the stops of everything.
    for body in bodies[5:]:
        again = httpx.post(second.url + "/agents", json=body, timeout=90)
        assert again.status_code == 201, (point, again.text)
    for body in bodies:
        gone = httpx.delete(f"{second.url}/agents/{body['id']}", timeout=90)
        assert gone.status_code == 204, (point, gone.text)
    assert crash.agents(second) == {}, point
    assert _containers(engine, crash.instance) == [], point
    second.stop()


@pytest.mark.slow
def test_rounds_of_crashes_under_churn_leave_nothing_behind(
    crashable: Callable[[str], Crashable], engine: Engine
) -> None:
    crash = crashable("churn")
    for round_no, point in enumerate(ROUNDS):
        _one_round(crash, engine, round_no, point)
    left = [v["Name"] for v in engine.volumes() if crash.instance in v["Name"]]
    assert left == []
