"""Issue 3 end to end: every agent image built from nothing, then spawned through the HTTP API.

The build starts from no Debian image and no layer cache (``--fresh-base --no-cache``), as on a
new machine without a registry. Each type is then spawned with the service's default hardening
and checked from inside: its CLI runs as the non-root user, the root filesystem is read-only,
and it stays healthy on its heartbeat (Docker's own health check is off for it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.conftest import SECRETS_DIR
from tests.support.engine import Engine
from tests.support.polling import poll

pytestmark = [pytest.mark.slow]

Spawn = Callable[..., dict[str, Any]]
CLI_TYPES = ("claude", "codex", "gemini", "aider")


@pytest.fixture(scope="module")
def built_from_nothing(engine: Engine) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "parallax_docker.cli.main",
            "images",
            "build",
            "all",
            "--no-cache",
            "--fresh-base",
            "--plain",
        ],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
        env=dict(os.environ),
    )
    seconds = time.monotonic() - started
    print(f"\nimages build all from nothing: {seconds:.0f}s")
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    return seconds


def _beats_again(agent_id: str, since: float, within_s: float = 15) -> float:
    """The time of the agent's next heartbeat after ``since`` (its FIFO's modification time)."""
    channel = SECRETS_DIR / agent_id / "heartbeat"
    return poll(lambda: channel.stat().st_mtime, lambda at: at > since, timeout_s=within_s)


@pytest.mark.parametrize("agent_type", [*CLI_TYPES, "custom"])
def test_each_type_spawns_hardened_and_its_cli_runs(
    built_from_nothing: float, spawn: Spawn, engine: Engine, api: httpx.Client, agent_type: str
) -> None:
    fields: dict[str, Any] = {
        "type": agent_type,
        "image": None,
        "resources": {"memory": "1g", "cpu": 1},
    }
    handle = spawn(**fields)
    spawned = time.time()
    name = handle["containerName"]
    assert handle["status"] == "ready" and handle["health"] == "healthy"
    tag = os.environ.get("PARALLAX_IMAGE_TAG", "latest")
    assert (
        handle["image"]
        == f"parallax/agent-{'base' if agent_type == 'custom' else agent_type}:{tag}"
    )
    host = engine.inspect(name)["HostConfig"]  # type: ignore[index]
    assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
    assert engine.exec(name, "id", "-un") == (0, "agent\n")
    code, output = engine.exec(name, "touch", "/usr/local/probe")
    assert code != 0 and "Read-only file system" in output
    if agent_type != "custom":
        code, output = engine.exec(name, "parallax-exec", agent_type, "--version")
        assert code == 0, output
        version = (engine.inspect(name) or {})["Config"]["Labels"]["parallax.cli.version"]
        assert version in output
    assert (engine.inspect(name) or {})["Config"]["Healthcheck"]["Test"] == ["NONE"]
    _beats_again(handle["id"], spawned + 1)
    assert api.get(f"/agents/{handle['id']}").json()["health"] == "healthy"


def test_claude_without_a_key_says_it_needs_a_login(
    built_from_nothing: float, spawn: Spawn, api: httpx.Client
) -> None:
    handle = spawn(type="claude", image=None, resources={"memory": "1g", "cpu": 1})
    logs = api.get(f"/agents/{handle['id']}/logs").json()["logs"]
    assert any("login required" in line and "ANTHROPIC_API_KEY" in line for line in logs), logs
