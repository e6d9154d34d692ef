"""Health of the project's agents from their heartbeat, on the real engine and image: no Docker
health check, a dead process seen at once, a stopped one or a CLI that cannot run within 30 s, and
a channel that gives an agent no way out nor a way to speak for another."""

from __future__ import annotations

import os
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import PREFIX, SECRETS_DIR, agent_body
from tests.support.engine import Engine
from tests.support.polling import poll
from tests.support.server import ServiceProcess

StartService = Callable[..., ServiceProcess]
# The target: a wedged agent is seen within 30 s (three 5 s beats missed, plus a look).
WEDGED_WITHIN_S = 30


@pytest.fixture
def echo(agent_image: Callable[[str], str]) -> str:
    return agent_image("echo")


@pytest.fixture
def fleet(api: httpx.Client, engine: Engine, echo: str) -> Iterator[Callable[..., dict[str, Any]]]:
    """Spawn echo agents (the project's image) through the session's service."""
    made: list[str] = []

    def spawn(**fields: Any) -> dict[str, Any]:
        body = agent_body(image=echo, resources={"memory": "128m", "cpu": 0.25}, **fields)
        response = api.post("/agents", json=body)
        assert response.status_code == 201, response.text
        handle: dict[str, Any] = response.json()
        made.append(handle["containerName"])
        return handle

    yield spawn
    for name in made:
        engine.remove_container(name)


def _agent(api: httpx.Client, agent_id: str) -> dict[str, Any]:
    return dict(api.get(f"/agents/{agent_id}").json())


def _sh(engine: Engine, container: str, script: str) -> tuple[int, str]:
    return engine.exec(container, "bash", "-c", script)


def test_a_ready_agent_has_no_docker_health_check_and_is_never_shown_starting(
    api: httpx.Client, engine: Engine, fleet: Callable[..., dict[str, Any]]
) -> None:
    handle = fleet()
    # At once, as the spawn answers: the handle and the engine's own listing.
    listed = engine.containers(f"parallax.agent.id={handle['id']}")
    assert handle["status"] == "ready" and handle["health"] == "healthy"
    assert [c["Status"] for c in listed if "health" in c["Status"]] == []
    info = engine.inspect(handle["containerName"])
    assert info is not None
    assert info["Config"]["Healthcheck"]["Test"] == ["NONE"]
    assert "Health" not in info["State"]
    # The agent's own beats keep it healthy.
    time.sleep(12)
    assert _agent(api, handle["id"])["health"] == "healthy"


def test_a_killed_agent_process_is_seen_at_once(
    api: httpx.Client, engine: Engine, fleet: Callable[..., dict[str, Any]]
) -> None:
    handle = fleet()
    killed = time.monotonic()
    _sh(engine, handle["containerName"], "kill -KILL $(cat /run/parallax/agent.pid)")
    seen = poll(
        lambda: _agent(api, handle["id"]),
        lambda a: a["status"] == "error",
        timeout_s=10,
    )
    assert time.monotonic() - killed < 3
    assert seen["errorCode"] == "AGENT_EXITED" and seen["exitCode"] == 137


def test_a_stopped_agent_process_is_seen_within_30s_and_recovers(
    api: httpx.Client, engine: Engine, fleet: Callable[..., dict[str, Any]]
) -> None:
    handle = fleet()
    container = handle["containerName"]
    _sh(engine, container, "kill -STOP $(cat /run/parallax/agent.pid)")
    seen = poll(
        lambda: _agent(api, handle["id"]),
        lambda a: a["status"] == "error",
        timeout_s=WEDGED_WITHIN_S,
        interval_s=0.5,
    )
    assert seen["errorCode"] == "HEALTH_CHECK_FAILED" and seen["health"] == "unhealthy"
    assert "is stopped" in seen["error"]
    _sh(engine, container, "kill -CONT $(cat /run/parallax/agent.pid)")
    back = poll(
        lambda: _agent(api, handle["id"]),
        lambda a: a["status"] == "ready",
        timeout_s=WEDGED_WITHIN_S,
        interval_s=0.5,
    )
    assert back["health"] == "healthy" and back["error"] is None


def test_an_agent_that_stops_beating_altogether_is_seen_within_30s(
    api: httpx.Client, engine: Engine, fleet: Callable[..., dict[str, Any]]
) -> None:
    handle = fleet()
    stopped = time.monotonic()
    # Every process of the agent's user but this shell: the entrypoint, its beat, the agent.
    _sh(engine, handle["containerName"], "kill -STOP -1")
    seen = poll(
        lambda: _agent(api, handle["id"]),
        lambda a: a["status"] == "error",
        timeout_s=WEDGED_WITHIN_S,
        interval_s=0.5,
    )
    assert time.monotonic() - stopped <= WEDGED_WITHIN_S
    assert "no heartbeat" in seen["error"] and seen["errorCode"] == "HEALTH_CHECK_FAILED"
    _sh(engine, handle["containerName"], "kill -CONT -1")


def test_a_cli_that_can_no_longer_run_is_seen_within_30s(
    api: httpx.Client, engine: Engine, fleet: Callable[..., dict[str, Any]]
) -> None:
    # The agent's CLI is a program in its workspace, made as it starts: on a volume, where
    # programs may run (the runtime's tmpfs mounts are noexec).
    make_cli = "printf '#!/bin/sh\\n' >/workspace/cli && chmod +x /workspace/cli"
    handle = fleet(
        env={"PARALLAX_CLI_BIN": "/workspace/cli"},
        volumes=[f"{PREFIX}-cli-{uuid.uuid4().hex[:6]}:/workspace"],
        command=["bash", "-c", f"{make_cli} && exec parallax-idle"],
    )
    assert handle["status"] == "ready"
    _sh(engine, handle["containerName"], "chmod -x /workspace/cli")
    seen = poll(
        lambda: _agent(api, handle["id"]),
        lambda a: a["status"] == "error",
        timeout_s=WEDGED_WITHIN_S,
        interval_s=0.5,
    )
    assert "/workspace/cli is not installed or not executable" in seen["error"]


def test_a_spawn_whose_cli_cannot_run_fails_saying_so_and_leaves_nothing(
    start_service: StartService, engine: Engine, echo: str
) -> None:
    proc = start_service({"PARALLAX_READY_TIMEOUT_S": "4"})
    body = agent_body(image=echo, env={"PARALLAX_CLI_BIN": "no-such-cli"})
    refused = httpx.post(proc.url + "/agents", json=body, timeout=60)
    assert refused.status_code == 502, refused.text
    answer = refused.json()
    assert answer["code"] == "HEALTH_CHECK_FAILED"
    assert "no-such-cli is not installed" in answer["error"]
    assert engine.containers(f"parallax.agent.name={body['name']}") == []


def test_the_channel_is_a_lone_fifo_the_agent_cannot_replace_chmod_or_overflow(
    engine: Engine, fleet: Callable[..., dict[str, Any]]
) -> None:
    handle = fleet(env={"SECRET_TOKEN": "not-for-anyone"})
    container = handle["containerName"]
    folder = SECRETS_DIR / handle["id"]
    channel = folder / "heartbeat"
    files_before = sorted(os.listdir(folder))
    info = engine.inspect(container)
    assert info is not None
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    # Only the FIFO is mounted from the agent's folder, never the folder itself.
    assert mounts["/run/parallax/heartbeat"]["Source"] == str(channel)
    assert str(folder) not in {m["Source"] for m in info["Mounts"]}
    for attempt in (
        "rm -f /run/parallax/heartbeat",
        "mv /run/parallax/heartbeat /run/parallax/moved",
        "ln -f /run/parallax/auth /run/parallax/heartbeat",
        "chmod 777 /run/parallax/heartbeat",
        "ln -s / /run/parallax/heartbeat/escape",
    ):
        code, _ = _sh(engine, container, attempt)
        assert code != 0, attempt
    # A flood: the kernel holds one pipe buffer, nothing reaches the host's disk.
    _sh(engine, container, "timeout 3 bash -c 'cat /dev/zero >/run/parallax/heartbeat'")
    after = os.lstat(channel)
    assert stat.S_ISFIFO(after.st_mode) and after.st_size == 0
    assert stat.S_IMODE(after.st_mode) == 0o666 and after.st_uid == os.geteuid()
    assert sorted(os.listdir(folder)) == files_before


def test_an_agent_cannot_reach_or_speak_for_another_agents_heartbeat(
    api: httpx.Client, engine: Engine, fleet: Callable[..., dict[str, Any]]
) -> None:
    liar = fleet()
    victim = fleet()
    code, mountinfo = _sh(engine, liar["containerName"], "cat /proc/self/mountinfo")
    assert code == 0 and victim["id"] not in mountinfo
    code, found = _sh(
        engine,
        liar["containerName"],
        f"find / -path /proc -prune -o -name '*{victim['id']}*' -print 2>/dev/null",
    )
    assert found.strip() == ""
    # The victim stops; the liar writes "ok" into every channel it can reach, all the while.
    _sh(engine, victim["containerName"], "kill -STOP $(cat /run/parallax/agent.pid)")
    engine.exec(
        liar["containerName"],
        "bash",
        "-c",
        "nohup bash -c 'while :; do echo ok >/run/parallax/heartbeat; sleep 0.2; done' "
        ">/dev/null 2>&1 &",
    )
    seen = poll(
        lambda: _agent(api, victim["id"]),
        lambda a: a["status"] == "error",
        timeout_s=WEDGED_WITHIN_S,
        interval_s=0.5,
    )
    assert "is stopped" in seen["error"]
    assert _agent(api, liar["id"])["status"] == "ready"
    assert Path(SECRETS_DIR / victim["id"] / "heartbeat").exists()
