"""Threads on the real engine, driven the way the Parallax control plane drives a runtime.

The control plane's RuntimeClient posts ``/api/threads``, gives up after 30 s, follows every
``thread_event`` frame on a plain ``/api/ws`` client, sends the next task only after
``thread_ready`` and waits for the next ``thread_turn_complete``. These tests do the same with
the echo image (its answer is its message, so the ``CONFIDENCE: 0.8`` line of an objective comes
back as the answer's), a slow variant of it, and a claude-shaped CLI (tests/support/threads.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import PREFIX, session_objects
from tests.support.engine import Engine
from tests.support.polling import poll
from tests.support.server import ServiceProcess
from tests.support.threads import (
    SLOW_READY_S,
    ThreadFeed,
    fake_claude_image,
    since,
    slow_echo_image,
)

pytestmark = pytest.mark.integration


def execution() -> str:
    return f"{PREFIX}-{uuid.uuid4().hex[:8]}"


def body(execution_id: str, index: int = 0, **fields: Any) -> dict[str, Any]:
    """A SpawnThreadInput as the control plane builds it (id ``<executionId>-thread-<i>``)."""
    spawn: dict[str, Any] = {
        "id": f"{execution_id}-thread-{index}",
        "executionId": execution_id,
        "name": f"Engineer {index + 1}",
        "agentType": "custom",
        "objective": "Summarise the task.\nCONFIDENCE: 0.8",
        "role": "engineer",
        "metadata": {"roleName": "Engineer", "orgPattern": "test"},
        "resources": {"memory": "128m", "cpu": 0.5},
    }
    spawn.update(fields)
    return spawn


@pytest.fixture
def echo(agent_image: Callable[[str], str]) -> str:
    return agent_image("echo")


@pytest.fixture
def feed(service: ServiceProcess) -> Iterator[ThreadFeed]:
    with ThreadFeed(service.url) as connected:
        yield connected


@pytest.fixture
def threads(api: httpx.Client, engine: Engine) -> Iterator[Callable[..., httpx.Response]]:
    """Post a thread through ``/api/threads``; every thread's agent is removed after the test."""
    made: list[str] = []

    def post(spawn: dict[str, Any], client: httpx.Client = api) -> httpx.Response:
        response = client.post("/api/threads", json=spawn)
        if response.status_code == 201:
            made.append(response.json()["id"])
        return response

    yield post
    for thread_id in made:
        engine.remove_container(f"parallax-{thread_id}")


def is_iso(value: str) -> bool:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None


def test_a_thread_answers_at_once_keeps_its_id_and_primes_with_its_objective(
    api: httpx.Client,
    feed: ThreadFeed,
    threads: Callable[..., httpx.Response],
    echo: str,
    engine: Engine,
) -> None:
    execution_id = execution()
    slow = slow_echo_image(echo)
    started = time.monotonic()
    response = threads(body(execution_id, image=slow))
    answered_in = since(started)
    assert response.status_code == 201, response.text
    # The agent needs ~10 s to be ready; the control plane would give up at 30 s.
    assert answered_in < 5, answered_in
    handle = response.json()
    thread_id = f"{execution_id}-thread-0"
    assert handle["id"] == handle["agentId"] == thread_id
    assert handle["status"] == "starting" and handle["runtimeName"] == "docker"
    assert handle["executionId"] == execution_id and handle["role"] == "engineer"
    assert all(is_iso(handle[key]) for key in ("createdAt", "updatedAt"))
    assert api.get(f"/api/agents/{thread_id}").json()["status"] in ("pending", "starting")

    events = feed.wait_for(thread_id, lambda t: "thread_ready" in t, timeout_s=60)
    assert since(started) >= SLOW_READY_S - 1  # ready only once the agent was
    assert [e["type"] for e in events] == [
        "thread_started",
        "thread_output",
        "thread_turn_complete",
        "thread_ready",
    ]
    complete = events[2]
    assert complete["data"]["output"] == "Summarise the task.\nCONFIDENCE: 0.8"
    assert complete["data"]["confidence"] == 0.8 and complete["data"]["objective"] is True
    assert events[1]["data"]["message"]["content"] == complete["data"]["output"]
    # Every event: {event: thread_event, data: {thread, event}, timestamp}, dates as ISO strings.
    for event in events:
        frame = event["frame"]
        assert set(frame) == {"event", "data", "timestamp"} and is_iso(frame["timestamp"])
        assert event["executionId"] == execution_id and is_iso(event["timestamp"])
        assert event["thread"]["id"] == thread_id
        assert all(is_iso(event["thread"][key]) for key in ("createdAt", "updatedAt"))
    assert events[-1]["thread"]["status"] == "ready"
    # The agent's own message frames go to the same plain client.
    assert any(f["event"] == "message" for f in feed.frames)

    # A second turn through send: after thread_ready, the next thread_turn_complete is its own.
    before = len(events)
    sent = api.post(f"/api/threads/{thread_id}/send", json={"message": "Step two."})
    assert sent.status_code == 200 and sent.json() == {"sent": True}
    feed.wait_for(thread_id, lambda t: t.count("thread_turn_complete") == 2)
    second = feed.first(thread_id, "thread_turn_complete", after=before)
    assert second["data"]["output"] == "Step two." and "confidence" not in second["data"]
    assert feed.types(thread_id).count("thread_ready") == 1
    got = api.get(f"/api/threads/{thread_id}").json()
    assert got["status"] == "ready" and got["summary"] == "Step two."
    assert got["completion"] == {"state": "partial", "summary": "Step two."}


def test_a_stopped_thread_reports_thread_stopped_and_is_gone_from_the_engine(
    api: httpx.Client,
    feed: ThreadFeed,
    threads: Callable[..., httpx.Response],
    echo: str,
    engine: Engine,
) -> None:
    execution_id = execution()
    thread_id = threads(body(execution_id, image=echo)).json()["id"]
    feed.wait_for(thread_id, lambda t: "thread_ready" in t)
    stopped = api.delete(f"/api/threads/{thread_id}", params={"force": "true", "timeout": 2000})
    assert stopped.status_code == 204, stopped.text
    assert feed.wait_for(thread_id, lambda t: "thread_stopped" in t)[-1]["data"]["reason"] == (
        "deleted"
    )
    assert engine.inspect(f"parallax-{thread_id}") is None
    assert api.get(f"/api/threads/{thread_id}").json()["status"] == "stopped"
    assert api.delete(f"/threads/{thread_id}").status_code == 204  # again, without /api
    late = api.post(f"/api/threads/{thread_id}/send", json={"message": "late"})
    assert late.status_code == 409 and late.json()["code"] == "THREAD_STATE"
    # The execution's shared home can go once its threads have.
    cleaned = api.delete(f"/api/executions/{execution_id}/resources")
    assert cleaned.status_code == 200, cleaned.text


def test_list_filters_by_execution_role_status_and_agent_type(
    api: httpx.Client,
    feed: ThreadFeed,
    threads: Callable[..., httpx.Response],
    echo: str,
) -> None:
    execution_id, other = execution(), execution()
    made = [
        threads(body(execution_id, 0, image=echo, role="qa")).json()["id"],
        threads(body(execution_id, 1, image=echo)).json()["id"],
        threads(body(other, 0, image=echo)).json()["id"],
    ]
    for thread_id in made:
        feed.wait_for(thread_id, lambda t: "thread_ready" in t)

    def listed(**params: Any) -> set[str]:
        response = api.get("/api/threads", params=params)
        assert response.status_code == 200, response.text
        found = response.json()
        assert found["count"] == len(found["threads"])
        return {thread["id"] for thread in found["threads"]} & set(made)

    assert listed(executionId=execution_id) == set(made[:2])
    assert listed(executionId=execution_id, role="qa") == {made[0]}
    assert listed(status=["ready", "running"]) == set(made)
    assert listed(status=["failed"]) == set()
    assert listed(agentType=["claude", "custom"]) == set(made)
    assert listed(agentType="codex") == set()
    bad = api.get("/api/threads", params={"status": "sleeping"})
    assert bad.status_code == 422 and bad.json()["code"] == "VALIDATION_ERROR"


def test_unknown_threads_answer_404_as_the_client_expects(api: httpx.Client) -> None:
    for method, path, payload in (
        ("GET", "/api/threads/no-such-thread", None),
        ("GET", "/threads/no-such-thread", None),
        ("DELETE", "/api/threads/no-such-thread", None),
        ("POST", "/api/threads/no-such-thread/send", {"message": "hi"}),
        ("GET", "/api/threads/no-such-thread/events", None),
    ):
        response = api.request(method, path, json=payload)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["code"] == "THREAD_NOT_FOUND"


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"bogus": True}, 422, "VALIDATION_ERROR"),
        ({"objective": ""}, 422, "VALIDATION_ERROR"),
        ({"agentType": "cobol"}, 422, "VALIDATION_ERROR"),
        ({"contextFiles": [{"path": "../../etc/x", "content": "x"}]}, 422, "VALIDATION_ERROR"),
        ({"workspace": {"repo": "org/repo", "inherit": True}}, 422, "VALIDATION_ERROR"),
        ({"workspace": {"path": "/srv/elsewhere"}}, 403, "VOLUME_FORBIDDEN"),
        ({"agentType": "codex", "approvalPreset": "readonly"}, 422, "POLICY_UNSUPPORTED"),
        ({"policy": {"autoInterruptOnToolRunning": True}}, 422, "POLICY_UNSUPPORTED"),
        ({"image": "parallax-test/never-built:nope"}, 404, "IMAGE_NOT_FOUND"),
    ],
)
def test_bad_thread_requests_are_refused_with_a_code_and_make_nothing(
    api: httpx.Client,
    engine: Engine,
    echo: str,
    fields: dict[str, Any],
    status: int,
    code: str,
) -> None:
    spawn = body(execution(), image=echo)
    spawn.update(fields)
    before = session_objects(engine)
    response = api.post("/api/threads", json=spawn)
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["code"] == code and answer["error"] and answer["resolution"]
    assert session_objects(engine) == before
    assert api.get(f"/api/threads/{spawn['id']}").status_code == 404


def test_a_retried_spawn_answers_with_the_same_thread_and_another_body_is_a_conflict(
    api: httpx.Client, threads: Callable[..., httpx.Response], echo: str
) -> None:
    spawn = body(execution(), image=echo)
    first = threads(spawn)
    again = api.post("/api/threads", json=spawn)
    assert first.status_code == again.status_code == 201
    assert again.json()["createdAt"] == first.json()["createdAt"]
    other = api.post("/api/threads", json={**spawn, "objective": "Something else."})
    assert other.status_code == 409 and other.json()["code"] == "CONFLICT"


def test_ctrl_c_interrupts_the_running_turn_and_other_keys_are_refused(
    api: httpx.Client,
    feed: ThreadFeed,
    threads: Callable[..., httpx.Response],
    echo: str,
) -> None:
    execution_id = execution()
    quick = threads(body(execution_id, image=echo, objective="quick")).json()["id"]
    feed.wait_for(quick, lambda t: "thread_ready" in t)
    idle = api.post(f"/api/threads/{quick}/send", json={"raw": "\u0003"})
    assert idle.status_code == 409 and idle.json()["code"] == "THREAD_STATE"
    refused = api.post(f"/api/threads/{quick}/send", json={"keys": ["ENTER"]})
    assert refused.status_code == 422 and refused.json()["code"] == "INPUT_UNSUPPORTED"
    # A typed line ended with Enter is a message.
    assert api.post(f"/api/threads/{quick}/send", json={"raw": "typed line\r"}).status_code == 200
    feed.wait_for(quick, lambda t: t.count("thread_turn_complete") == 2)
    assert feed.events(quick)[-1]["data"]["output"] == "typed line"
    # The echo agent holds each turn for PARALLAX_ECHO_DELAY_S: its objective runs 30 s.
    slow = body(execution_id, 1, image=echo, objective="held", env={"PARALLAX_ECHO_DELAY_S": "30"})
    held = threads(slow).json()["id"]
    poll(lambda: api.get(f"/api/threads/{held}").json()["status"], "running".__eq__, 60)
    started = time.monotonic()
    interrupted = api.post(f"/api/threads/{held}/send", json={"keys": ["C-c"]})
    assert interrupted.status_code == 200, interrupted.text
    failed = feed.wait_for(held, lambda t: "thread_failed" in t, timeout_s=20)[-1]
    assert since(started) < 15
    assert failed["data"]["code"] == "TURN_INTERRUPTED"
    assert api.get(f"/api/threads/{held}").json()["status"] == "failed"


def test_a_claude_thread_reports_tools_denied_permissions_usage_and_its_preset(
    api: httpx.Client,
    feed: ThreadFeed,
    threads: Callable[..., httpx.Response],
    echo: str,
) -> None:
    execution_id = execution()
    spawn = body(
        execution_id,
        agentType="claude",
        image=fake_claude_image(echo),
        objective="Plan the work.",
        preparation={"approvalPreset": "standard"},
    )
    thread_id = threads(spawn).json()["id"]
    events = feed.wait_for(thread_id, lambda t: "thread_ready" in t)
    types = [e["type"] for e in events]
    assert types.index("thread_tool_running") < types.index("thread_blocked")
    assert types.index("thread_blocked") < types.index("thread_turn_complete")
    tool = feed.first(thread_id, "thread_tool_running")["data"]["info"]
    assert tool == {"tool": "Bash", "input": {"command": "ls /workspace"}}
    blocked = feed.first(thread_id, "thread_blocked")["data"]
    assert blocked["autoResponded"] is True and blocked["promptInfo"]["tool"] == "Write"
    complete = feed.first(thread_id, "thread_turn_complete")["data"]
    assert complete["confidence"] == 0.9
    usage = complete["usage"]  # the one result shape's usage (drivers/result.py)
    assert (usage["inputTokens"], usage["outputTokens"]) == (11, 7)
    # The standard preset reached claude as its own permission mode.
    args = complete["output"].split("ARGS: ")[1].splitlines()[0]
    assert "--permission-mode dontAsk" in args and "WebFetch" in args
    assert "bypassPermissions" not in args
    assert api.get(f"/api/threads/{thread_id}").json()["approvalPreset"] == "standard"


def test_context_files_land_in_the_mounted_workspace_and_readonly_mounts_it_read_only(
    start_service: Callable[..., ServiceProcess],
    engine: Engine,
    echo: str,
    tmp_path: Path,
) -> None:
    root = tmp_path / "workspaces"
    root.mkdir()
    for name in ("w1", "w2"):
        (root / name).mkdir(mode=0o777)
        (root / name).chmod(0o777)
    proc = start_service({"PARALLAX_ALLOWED_HOST_PATHS": str(root)})
    execution_id = execution()
    memory = "# Thread memory\nDecided: use SQLite.\n"
    spawns = [
        body(
            execution_id,
            0,
            image=echo,
            preparation={
                "workspace": {"path": str(root / "w1"), "repo": "org/repo", "branch": "b"},
                "contextFiles": [{"path": ".parallax/thread-memory.md", "content": memory}],
            },
        ),
        body(
            execution_id,
            1,
            image=echo,
            workspace={"path": str(root / "w2")},
            approvalPreset="readonly",
        ),
    ]
    with httpx.Client(base_url=proc.url, timeout=60) as client, ThreadFeed(proc.url) as feed:
        ids = []
        try:
            for spawn in spawns:
                response = client.post("/api/threads", json=spawn)
                assert response.status_code == 201, response.text
                ids.append(response.json()["id"])
            for thread_id in ids:
                feed.wait_for(thread_id, lambda t: "thread_ready" in t)
            assert (root / "w1" / ".parallax" / "thread-memory.md").read_text() == memory
            writer, reader = (f"parallax-{thread_id}" for thread_id in ids)
            assert engine.exec(writer, "sh", "-c", "echo $PWD")[1].strip() == "/workspace"
            assert engine.exec(writer, "touch", "/workspace/made-by-agent")[0] == 0
            assert (root / "w1" / "made-by-agent").exists()
            assert engine.exec(reader, "touch", "/workspace/x")[0] != 0
            listed = client.get(f"/api/threads/{ids[0]}").json()
            want = {"path": str(root / "w1"), "repo": "org/repo", "branch": "b"}
            assert listed["workspace"] == want
            elsewhere = body(execution_id, 2, image=echo, workspace={"path": str(tmp_path)})
            outside = client.post("/api/threads", json=elsewhere)
            assert outside.status_code == 403 and outside.json()["code"] == "VOLUME_FORBIDDEN"
        finally:
            for thread_id in ids:
                engine.remove_container(f"parallax-{thread_id}")


def test_a_thread_follows_its_agent_crash_clean_exit_and_lifetime(
    api: httpx.Client,
    feed: ThreadFeed,
    threads: Callable[..., httpx.Response],
    echo: str,
    engine: Engine,
) -> None:
    execution_id = execution()
    crash, clean = (threads(body(execution_id, i, image=echo)).json()["id"] for i in (0, 1))
    short = threads(
        body(execution_id, 2, image=echo, resources={"memory": "128m", "timeout": 8})
    ).json()["id"]
    for thread_id in (crash, clean, short):
        feed.wait_for(thread_id, lambda t: "thread_ready" in t)
    engine.http.post(f"/containers/parallax-{crash}/kill").raise_for_status()
    failed = feed.wait_for(crash, lambda t: "thread_failed" in t)[-1]
    assert failed["data"]["code"] == "AGENT_EXITED"
    engine.http.post(f"/containers/parallax-{clean}/stop", params={"t": 5}).raise_for_status()
    completed = feed.wait_for(clean, lambda t: "thread_completed" in t)[-1]
    assert completed["data"]["completion"]["state"] == "complete"
    assert api.get(f"/api/threads/{clean}").json()["status"] == "completed"
    stopped = feed.wait_for(short, lambda t: "thread_stopped" in t, timeout_s=40)[-1]
    assert stopped["data"]["reason"] == "timeout"


def test_an_idle_thread_is_reported_then_stopped_after_its_idle_checks(
    api: httpx.Client,
    feed: ThreadFeed,
    threads: Callable[..., httpx.Response],
    echo: str,
    engine: Engine,
) -> None:
    policy = {"idleTimeoutMs": 1500, "maxIdleChecks": 2}
    thread_id = threads(body(execution(), image=echo, policy=policy)).json()["id"]
    feed.wait_for(thread_id, lambda t: "thread_ready" in t)
    ready_at = time.monotonic()
    events = feed.wait_for(thread_id, lambda t: "thread_stopped" in t, timeout_s=30)
    assert since(ready_at) >= 3  # two idle periods of 1.5 s
    idle = [e for e in events if e["type"] == "thread_idle"]
    assert [e["data"]["checks"] for e in idle] == [1, 2]
    assert idle[0]["thread"]["status"] == "idle"
    assert events[-1]["data"]["reason"] == "idle"
    assert engine.inspect(f"parallax-{thread_id}") is None


def test_threads_and_their_events_come_back_after_a_service_restart(
    start_service: Callable[..., ServiceProcess],
    engine: Engine,
    echo: str,
    tmp_path: Path,
) -> None:
    state = tmp_path / "kept-state"
    instance = f"{PREFIX}-{uuid.uuid4().hex[:6]}"
    env = {"PARALLAX_STATE_DIR": str(state), "PARALLAX_INSTANCE": instance}
    first = start_service(env)
    execution_id = execution()
    thread_id = f"{execution_id}-thread-0"
    try:
        with httpx.Client(base_url=first.url, timeout=60) as client, ThreadFeed(first.url) as feed:
            response = client.post("/api/threads", json=body(execution_id, image=echo))
            assert response.status_code == 201, response.text
            feed.wait_for(thread_id, lambda t: "thread_ready" in t)
            before = client.get(f"/api/threads/{thread_id}/events").json()
        first.stop()  # SIGTERM: the agent keeps running
        container = engine.inspect(f"parallax-{thread_id}")
        assert container is not None and container["State"]["Running"]
        second = start_service(env)
        with (
            httpx.Client(base_url=second.url, timeout=60) as client,
            ThreadFeed(second.url) as feed,
        ):
            adopted = client.get(f"/api/threads/{thread_id}")
            assert adopted.status_code == 200, adopted.text
            assert adopted.json()["status"] == "ready"
            assert adopted.json()["objective"] == "Summarise the task.\nCONFIDENCE: 0.8"
            listed = client.get("/api/threads", params={"executionId": execution_id}).json()
            assert [t["id"] for t in listed["threads"]] == [thread_id]
            kept = client.get(f"/api/threads/{thread_id}/events").json()
            assert kept["events"] == before["events"]  # nothing lost
            sent = client.post(f"/api/threads/{thread_id}/send", json={"message": "again"})
            assert sent.status_code == 200
            feed.wait_for(thread_id, lambda t: "thread_turn_complete" in t)
            assert feed.events(thread_id)[-1]["data"]["output"] == "again"
            assert "thread_ready" not in feed.types(thread_id)
            assert client.delete(f"/api/threads/{thread_id}").status_code == 204
    finally:
        engine.remove_container(f"parallax-{thread_id}")


@pytest.mark.slow
def test_a_claude_thread_without_a_key_asks_for_a_login_instead_of_getting_ready(
    api: httpx.Client,
    feed: ThreadFeed,
    threads: Callable[..., httpx.Response],
    agent_image: Callable[[str], str],
) -> None:
    spawn = body(
        execution(),
        agentType="claude",
        image=agent_image("claude"),
        resources={"memory": "1g", "cpu": 1.0},
    )
    thread_id = threads(spawn).json()["id"]
    events = feed.wait_for(thread_id, lambda t: "thread_failed" in t, timeout_s=120)
    types = [event["type"] for event in events]
    assert types[-2:] == ["thread_auth_required", "thread_failed"]
    auth = events[-2]["data"]
    assert auth["instructions"] and "url" in auth
    assert events[-1]["data"]["code"] == "LOGIN_REQUIRED"
    assert "thread_ready" not in types
    assert api.get(f"/api/threads/{thread_id}").json()["status"] == "blocked"
