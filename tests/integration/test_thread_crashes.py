"""A thread's start-up survives a crash of the service at each of its steps.

``PARALLAX_FAILPOINTS`` makes the service kill itself with SIGKILL right after it journals a
step: before the spawn is answered (``thread.begun``), while the agent starts
(``spawn.started``), after the context files (``thread.prepared``), once the objective's turn
is begun (``thread.objective``) and while it runs (``turn.running``). A service started again on
the same state must bring the thread to ``ready`` with its files written, its objective answered
and ``thread_ready`` sent exactly once, the caller's retry of an unanswered spawn must succeed,
and nothing may be left in the journal or on the engine.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import PREFIX
from tests.support.engine import Engine
from tests.support.polling import poll
from tests.support.server import ServiceProcess

pytestmark = pytest.mark.integration

MEMORY = "# memory\nkept across crashes\n"


@pytest.fixture
def instance(engine: Engine) -> Iterator[str]:
    name = f"{PREFIX}-tcrash-{uuid.uuid4().hex[:4]}"
    yield name
    for container in engine.containers(f"parallax.instance={name}"):
        engine.remove_container(container["Id"])


def spawn_body(echo: str, delay_s: str) -> dict[str, Any]:
    execution_id = f"{PREFIX}-{uuid.uuid4().hex[:8]}"
    return {
        "id": f"{execution_id}-thread-0",
        "executionId": execution_id,
        "name": "Engineer 1",
        "agentType": "custom",
        "image": echo,
        "objective": "Begin.\nCONFIDENCE: 0.7",
        "contextFiles": [{"path": ".parallax/thread-memory.md", "content": MEMORY}],
        # The echo agent holds each turn this long: a crash lands inside the objective's turn.
        "env": {"PARALLAX_ECHO_HOLD_S": delay_s},
        "resources": {"memory": "128m", "cpu": 0.5},
    }


@pytest.mark.parametrize(
    "point",
    ["thread.begun", "spawn.started", "thread.prepared", "thread.objective", "turn.running"],
)
def test_a_thread_start_up_killed_at_each_step_comes_back_ready_exactly_once(
    start_service: Callable[..., ServiceProcess],
    agent_image: Callable[[str], str],
    engine: Engine,
    instance: str,
    tmp_path: Path,
    point: str,
) -> None:
    env = {
        "PARALLAX_INSTANCE": instance,
        "PARALLAX_STATE_DIR": str(tmp_path / "state"),
        "PARALLAX_READY_TIMEOUT_S": "20",
        "PARALLAX_JANITOR_INTERVAL_S": "0.2",
    }
    body = spawn_body(agent_image("echo"), "1")
    thread_id = body["id"]
    first = start_service({**env, "PARALLAX_FAILPOINTS": point})
    try:
        answered = httpx.post(first.url + "/api/threads", json=body, timeout=30).status_code
    except httpx.TransportError:
        answered = -1  # killed before it answered
    assert first.process is not None and first.process.wait(60) != 0  # it died at the point
    first.process = None
    second = start_service(env)
    with httpx.Client(base_url=second.url, timeout=60) as client:
        if answered != 201:
            # The control plane retries a spawn whose answer it never got.
            retried = client.post("/api/threads", json=body)
            assert retried.status_code == 201, retried.text
        poll(
            lambda: client.get(f"/api/threads/{thread_id}").json().get("status"),
            "ready".__eq__,
            60,
        )
        events = client.get(f"/api/threads/{thread_id}/events", params={"limit": 200}).json()
        types = [event["type"] for event in events["events"]]
        assert types.count("thread_ready") == 1, types
        completes = [e for e in events["events"] if e["type"] == "thread_turn_complete"]
        assert completes and completes[-1]["data"]["confidence"] == 0.7
        assert completes[-1]["data"]["objective"] is True
        container = f"parallax-{thread_id}"
        code, text = engine.exec(container, "cat", "/workspace/.parallax/thread-memory.md")
        assert (code, text) == (0, MEMORY)
        # One agent for the thread, nothing left half-done.
        assert len(engine.containers(f"parallax.instance={instance}")) == 1
        journal = tmp_path / "state" / "journal" / instance
        poll(lambda: sorted(p.name for p in journal.glob("*.json")), [].__eq__, 20)
        # The thread works on.
        assert client.post(f"/api/threads/{thread_id}/send", json={"message": "next"}).is_success
        poll(
            lambda: [
                e["data"].get("output")
                for e in client.get(f"/api/threads/{thread_id}/events").json()["events"]
                if e["type"] == "thread_turn_complete"
            ][-1:],
            ["next"].__eq__,
            30,
        )
