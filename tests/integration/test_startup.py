"""Start-up: bad settings stop the service with a clear message; the OpenAPI document is served."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest

from tests.integration.conftest import PREFIX, agent_body
from tests.support.engine import Engine
from tests.support.server import ServiceProcess


def _serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parallax_docker.cli.main", "serve"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PARALLAX_DEFAULT_MEMROY": "1g"}, "PARALLAX_DEFAULT_MEMROY"),
        ({"DEFAULT_MEMORY": "lots"}, "DEFAULT_MEMORY"),
        ({"DEFAULT_CPU": "0"}, "DEFAULT_CPU"),
        ({"PORT": "http"}, "PORT"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
    ],
)
def test_invalid_settings_stop_start_up(env: dict[str, str], named: str) -> None:
    result = _serve(env)
    assert result.returncode == 2
    assert "CONFIG_ERROR" in result.stderr
    assert named in result.stderr
    assert "Traceback" not in result.stderr


def test_openapi_document_is_served(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    assert {
        "/agents",
        "/agents/{agent_id}",
        "/agents/{agent_id}/logs",
        "/agents/{agent_id}/metrics",
        "/agents/{agent_id}/restart",
        "/health",
    } <= set(document["paths"])


def test_health_reports_the_docker_runtime(api: httpx.Client) -> None:
    body = api.get("/health").json()
    assert body["healthy"] is True
    assert body["runtime"]["name"] == "docker" and body["runtime"]["type"] == "docker"
    assert isinstance(body["runtime"]["activeAgents"], int)


def test_sigterm_leaves_agents_running_and_restart_adopts_them(
    start_service: Callable[..., ServiceProcess], engine: Engine
) -> None:
    shared = {"PARALLAX_INSTANCE": f"{PREFIX}-adopt"}
    proc = start_service(shared)
    handle = httpx.post(proc.url + "/agents", json=agent_body(), timeout=60).json()
    try:
        # uvicorn re-raises the signal after a graceful shutdown, so -SIGTERM is a clean exit.
        assert proc.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in proc.logs()
        info = engine.inspect(handle["containerName"])
        assert info is not None and info["State"]["Running"]
        again = start_service(shared)
        # Docker's own health check has not run yet (its interval is long): the service
        # settles the adopted agent with one probe of its own, right after the sync.
        deadline = time.monotonic() + 3
        while True:
            adopted = httpx.get(f"{again.url}/agents/{handle['id']}", timeout=10)
            assert adopted.status_code == 200
            if adopted.json()["status"] != "starting" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert adopted.json()["status"] == "ready"
        assert adopted.json()["containerId"] == handle["containerId"]
        # Its output is served again too: what it printed before the restart, and new lines.
        logs = httpx.get(f"{again.url}/agents/{handle['id']}/logs", timeout=10).json()
        assert "agent-up" in logs["logs"]
    finally:
        engine.remove_container(handle["containerName"])
