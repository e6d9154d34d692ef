"""List, get, stop, restart, logs and metrics of running agents on the real engine."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.integration.conftest import SESSION
from tests.support.engine import Engine

Spawn = Callable[..., dict[str, Any]]

_LOOP = "trap 'exit 0' TERM; touch /tmp/ready; while true; do sleep 1; done"


def test_list_filters_by_status_type_and_role(spawn: Spawn, api: httpx.Client) -> None:
    role = f"r-{SESSION}"
    a = spawn(role=role)
    b = spawn(role=role + "-other")
    response = api.get("/agents", params={"role": [role, role + "-other"], "type": "custom"})
    assert response.status_code == 200
    body = response.json()
    ids = {agent["id"] for agent in body["agents"]}
    assert {a["id"], b["id"]} <= ids
    assert body["count"] == len(body["agents"])
    only_a = api.get("/agents", params={"role": role}).json()
    assert [agent["id"] for agent in only_a["agents"]] == [a["id"]]
    ready = api.get(
        "/agents", params=[("status", "ready"), ("status", "error"), ("role", role)]
    ).json()
    assert [agent["id"] for agent in ready["agents"]] == [a["id"]]
    none = api.get("/agents", params={"role": role, "status": "stopped"}).json()
    assert none == {"agents": [], "count": 0}


def test_list_refuses_unknown_status(api: httpx.Client) -> None:
    response = api.get("/agents", params={"status": "sleeping"})
    assert response.status_code == 422
    assert response.json()["code"] == "VALIDATION_ERROR"


def test_get_unknown_agent_is_agent_not_found(api: httpx.Client) -> None:
    response = api.get("/agents/agent-nope")
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "AGENT_NOT_FOUND"
    assert set(body) >= {"error", "code", "resolution"}


def test_handle_shows_env_keys_never_values(spawn: Spawn, api: httpx.Client) -> None:
    handle = spawn(
        env={"MY_TOKEN": "value-1f9a"},
        credentials={"anthropicKey": "sk-ant-77e1", "custom": {"EXTRA": "x-42"}},
    )
    assert handle["envKeys"] == ["ANTHROPIC_API_KEY", "EXTRA", "MY_TOKEN"]
    for text in (str(handle), api.get(f"/agents/{handle['id']}").text, api.get("/agents").text):
        for secret in ("value-1f9a", "sk-ant-77e1", "x-42"):
            assert secret not in text


def test_delete_stops_and_removes(spawn: Spawn, api: httpx.Client, engine: Engine) -> None:
    handle = spawn()
    response = api.delete(f"/agents/{handle['id']}")
    assert response.status_code == 204
    assert engine.inspect(handle["containerName"]) is None
    assert api.get(f"/agents/{handle['id']}").status_code == 404


def test_delete_kills_after_timeout_when_term_is_ignored(
    spawn: Spawn, api: httpx.Client, engine: Engine
) -> None:
    handle = spawn(
        command=["/bin/sh", "-c", "trap '' TERM; touch /tmp/ready; while true; do sleep 1; done"]
    )
    started = time.monotonic()
    response = api.delete(f"/agents/{handle['id']}", params={"timeout": 1000})
    elapsed = time.monotonic() - started
    assert response.status_code == 204
    assert 0.9 <= elapsed < 5, f"stop took {elapsed:.1f}s for a 1000 ms grace period"
    assert engine.inspect(handle["containerName"]) is None


def test_force_delete_does_not_wait_for_grace(
    spawn: Spawn, api: httpx.Client, engine: Engine
) -> None:
    handle = spawn(
        command=["/bin/sh", "-c", "trap '' TERM; touch /tmp/ready; while true; do sleep 1; done"]
    )
    started = time.monotonic()
    response = api.delete(f"/agents/{handle['id']}", params={"force": "true"})
    assert response.status_code == 204
    assert time.monotonic() - started < 3
    assert engine.inspect(handle["containerName"]) is None


def test_delete_of_an_exited_agent_works(spawn: Spawn, api: httpx.Client, engine: Engine) -> None:
    handle = spawn(command=["/bin/sh", "-c", "touch /tmp/ready; sleep 1; exit 4"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        agent = api.get(f"/agents/{handle['id']}").json()
        if agent["status"] in ("error", "stopped"):
            break
        time.sleep(0.1)
    assert agent["status"] == "error"
    assert agent["exitCode"] == 4
    response = api.delete(f"/agents/{handle['id']}")
    assert response.status_code == 204
    assert engine.inspect(handle["containerName"]) is None


def test_delete_unknown_agent_is_404(api: httpx.Client) -> None:
    response = api.delete("/agents/agent-missing")
    assert response.status_code == 404
    assert response.json()["code"] == "AGENT_NOT_FOUND"


def test_restart_brings_the_agent_back_ready(
    spawn: Spawn, api: httpx.Client, engine: Engine
) -> None:
    handle = spawn()
    response = api.post(f"/agents/{handle['id']}/restart")
    assert response.status_code == 200, response.text
    restarted = response.json()
    assert restarted["status"] == "ready"
    assert restarted["startedAt"] != handle["startedAt"]
    assert restarted["containerId"] == handle["containerId"]
    assert engine.inspect(handle["containerName"])["State"]["Running"]  # type: ignore[index]


def test_logs_tail_and_timestamps(spawn: Spawn, api: httpx.Client) -> None:
    handle = spawn(command=["/bin/sh", "-c", "for i in 1 2 3 4 5; do echo line-$i; done; " + _LOOP])
    response = api.get(f"/agents/{handle['id']}/logs", params={"tail": 2})
    assert response.status_code == 200
    assert response.json() == {"logs": ["line-4", "line-5"], "count": 2}
    stamped = api.get(f"/agents/{handle['id']}/logs", params={"timestamps": "true"}).json()
    assert stamped["count"] == 5
    assert all(line.split(" ", 1)[0].endswith("Z") for line in stamped["logs"])
    late = api.get(
        f"/agents/{handle['id']}/logs", params={"since": f"{time.time() + 60:.0f}"}
    ).json()
    assert late == {"logs": [], "count": 0}


def test_logs_tail_out_of_bounds_is_refused(spawn: Spawn, api: httpx.Client) -> None:
    handle = spawn()
    for tail in (-1, 10_000_000):
        response = api.get(f"/agents/{handle['id']}/logs", params={"tail": tail})
        assert response.status_code == 422
        assert response.json()["code"] == "VALIDATION_ERROR"


def test_follow_streams_new_lines_until_the_agent_stops(
    spawn: Spawn, api: httpx.Client, service: Any
) -> None:
    handle = spawn(
        command=[
            "/bin/sh",
            "-c",
            "trap 'exit 0' TERM; touch /tmp/ready; "
            "i=0; while [ $i -lt 30 ]; do echo tick-$i; i=$((i+1)); sleep 0.2; "
            "done; exit 0",
        ]
    )
    seen: list[str] = []
    started = time.monotonic()
    with httpx.stream(
        "GET", f"{service.url}/agents/{handle['id']}/logs", params={"follow": "true"}, timeout=30
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            seen.append(line)
    elapsed = time.monotonic() - started
    assert seen[:3] == ["tick-0", "tick-1", "tick-2"]
    assert seen[-1] == "tick-29"
    assert elapsed >= 3, "the stream ended before the agent stopped"


def test_followed_logs_do_not_hold_threads(spawn: Spawn, service: Any) -> None:
    handle = spawn()
    # Warm up: the first request may start the server's few fixed helper threads.
    httpx.get(f"{service.url}/agents/{handle['id']}/logs", timeout=10)

    def threads() -> int:
        with open(f"/proc/{service.pid}/status") as status:
            line = next(x for x in status if x.startswith("Threads:"))
        return int(line.split()[1])

    before = threads()
    stop = threading.Event()
    answered = threading.Semaphore(0)

    def follow() -> None:
        with httpx.stream(
            "GET",
            f"{service.url}/agents/{handle['id']}/logs",
            params={"follow": "true"},
            timeout=30,
        ) as response:
            answered.release()  # the service holds this stream open from here on
            for _ in response.iter_raw():
                if stop.is_set():
                    break

    followers = [threading.Thread(target=follow, daemon=True) for _ in range(20)]
    for follower in followers:
        follower.start()
    for _ in followers:
        assert answered.acquire(timeout=30), "a followed log stream never started"
    during = threads()
    stop.set()
    assert during - before < 5, f"{during - before} threads for 20 followed log streams"


def test_metrics_report_usage_within_limits(spawn: Spawn, api: httpx.Client) -> None:
    handle = spawn(
        resources={"memory": "128m", "cpu": 0.5},
        command=["/bin/sh", "-c", "touch /tmp/ready; while true; do :; done"],
    )
    response = api.get(f"/agents/{handle['id']}/metrics")
    assert response.status_code == 200, response.text
    metrics = response.json()
    assert metrics["memoryLimit"] == 128 * 1024 * 1024
    assert 0 < metrics["memory"] < metrics["memoryLimit"]
    assert 0 < metrics["memoryPercent"] < 100
    assert metrics["pids"] >= 2
    assert metrics["cpuLimit"] == 0.5
    # A rate needs a window: the next reading covers the second since this one. (A first
    # reading's own window is short enough for the kernel's 100 ms quota period to let a burst
    # through, so only the second is held to the limit.)
    time.sleep(1.0)
    metrics = api.get(f"/agents/{handle['id']}/metrics").json()
    # A busy loop under a half-core limit: well above idle, never far above the limit.
    assert 20 < metrics["cpu"] <= 130
    assert metrics["cpuHostPercent"] <= metrics["cpu"]
    assert set(metrics["network"]) == {"rxBytes", "txBytes"}
    assert metrics["uptime"] >= 0


def test_agents_reach_each_other_by_name(spawn: Spawn, engine: Engine) -> None:
    server = spawn(
        command=[
            "/bin/sh",
            "-c",
            "mkdir -p /tmp/www && echo hello-$HOSTNAME > /tmp/www/index.html && "
            "touch /tmp/ready && exec httpd -f -p 8080 -h /tmp/www",
        ]
    )
    client = spawn()
    for host in (server["name"], server["containerName"]):
        # busybox wget's own -T option crashes; the timeout applet bounds it instead.
        code, out = engine.exec(
            client["containerName"], "timeout", "5", "wget", "-qO-", f"http://{host}:8080/"
        )
        assert code == 0, out
        assert out.startswith("hello-")
