"""Agents of one executionId share a runtime-managed home volume; DELETE removes it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.conftest import PREFIX
from tests.support.engine import Engine

pytestmark = pytest.mark.integration

CREDENTIALS = "/home/agent/.claude/.credentials.json"


def new_execution() -> str:
    return f"{PREFIX}-x{uuid.uuid4().hex[:6]}"


def home_volume(execution_id: str) -> str:
    # The session's service runs as instance PREFIX (tests/integration/conftest.py).
    return f"parallax-exec-{PREFIX}-{execution_id}"


def home_mount(engine: Engine, container: str) -> dict[str, Any]:
    info = engine.inspect(container) or {}
    (mount,) = [m for m in info["Mounts"] if m["Destination"] == "/home/agent"]
    return dict(mount)


def test_agents_of_one_execution_share_their_home_volume(
    spawn: Callable[..., dict[str, Any]], engine: Engine
) -> None:
    execution = new_execution()
    first, second = spawn(executionId=execution), spawn(executionId=execution)
    stranger = spawn(executionId=new_execution())
    for agent in (first, second):
        mount = home_mount(engine, agent["containerName"])
        assert (mount["Type"], mount["Name"]) == ("volume", home_volume(execution))
    (volume,) = [v for v in engine.volumes() if v["Name"] == home_volume(execution)]
    assert volume["Labels"]["parallax.managed"] == "true"
    assert volume["Labels"]["parallax.execution.id"] == execution
    # A login saved by one agent of the execution is there for the other, not for a stranger.
    code, output = engine.exec(
        first["containerName"],
        "sh",
        "-c",
        f"mkdir -p /home/agent/.claude && echo token-1 > {CREDENTIALS}",
    )
    assert code == 0, output
    assert engine.exec(second["containerName"], "cat", CREDENTIALS) == (0, "token-1\n")
    assert engine.exec(stranger["containerName"], "cat", CREDENTIALS)[0] != 0


def test_removing_resources_of_an_execution_with_agents_is_409(
    api: httpx.Client, spawn: Callable[..., dict[str, Any]], engine: Engine
) -> None:
    execution = new_execution()
    spawn(executionId=execution)
    response = api.delete(f"/executions/{execution}/resources")
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "EXECUTION_IN_USE"
    assert any(v["Name"] == home_volume(execution) for v in engine.volumes())


def test_removing_resources_deletes_the_volume_then_answers_404(
    api: httpx.Client, spawn: Callable[..., dict[str, Any]], engine: Engine
) -> None:
    execution = new_execution()
    agents = [spawn(executionId=execution), spawn(executionId=execution)]
    for agent in agents:
        assert api.delete(f"/agents/{agent['id']}").status_code == 204
    response = api.delete(f"/executions/{execution}/resources")
    assert response.status_code == 200, response.text
    assert response.json() == {"executionId": execution, "volumes": [home_volume(execution)]}
    assert not any(v["Name"] == home_volume(execution) for v in engine.volumes())
    again = api.delete(f"/api/executions/{execution}/resources")
    assert again.status_code == 404
    assert again.json()["code"] == "EXECUTION_NOT_FOUND"


def test_an_execution_that_never_had_agents_is_404(api: httpx.Client) -> None:
    response = api.delete(f"/executions/{new_execution()}/resources")
    assert response.status_code == 404
    assert response.json()["code"] == "EXECUTION_NOT_FOUND"
