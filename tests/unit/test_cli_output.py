"""What the CLI prints: exit codes per error code, error text, tables, sizes, durations."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from rich.console import Console

from parallax_docker.cli import output
from parallax_docker.client import BadResponseError, RequestTimeoutError, ServiceUnreachableError
from parallax_docker.errors import (
    AgentNotFoundError,
    AgentStateError,
    ConflictError,
    EngineError,
    HealthCheckFailedError,
    ImageNotFoundError,
    LimitAboveHostError,
    NetworkForbiddenError,
    ParallaxError,
    ResourceLimitError,
    SocketError,
    UnauthorizedError,
    ValidationError,
    VolumeForbiddenError,
    all_error_classes,
)
from parallax_docker.models import AgentHandle, MetricsResponse
from tests.unit.test_client import handle_json


def render(renderable: object, width: int = 200) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


@pytest.mark.parametrize(
    ("error", "exit_code"),
    [
        (ValidationError("x"), 2),
        (AgentNotFoundError("x"), 3),
        (ImageNotFoundError("x"), 3),
        (ConflictError("x"), 4),
        (AgentStateError("x"), 4),
        (SocketError("x"), 5),
        (ServiceUnreachableError("x"), 6),
        (RequestTimeoutError("x"), 6),
        (BadResponseError("x"), 6),
        (UnauthorizedError("x"), 7),
        (VolumeForbiddenError("x"), 8),
        (NetworkForbiddenError("x"), 8),
        (ResourceLimitError("x"), 9),
        (LimitAboveHostError("x"), 9),
        (HealthCheckFailedError("x"), 10),
        (EngineError("x"), 1),
        (ParallaxError("x"), 1),
    ],
)
def test_exit_code_follows_the_error_code(error: ParallaxError, exit_code: int) -> None:
    assert output.exit_code_for(error) == exit_code


def test_every_server_error_class_has_a_deliberate_exit_code() -> None:
    unmapped = [
        cls.code
        for cls in all_error_classes()
        if cls.__module__ == "parallax_docker.errors"
        and output.exit_code_for(cls("x")) == output.EXIT_ERROR
    ]
    deliberate = {
        "INTERNAL_ERROR",
        "SERVER_ERROR",
        "ENGINE_ERROR",
        "INSECURE_SPAWN",
        "RUNTIME_UNAVAILABLE",
    }
    assert set(unmapped) <= deliberate, unmapped


def test_an_unknown_code_falls_back_on_its_http_status() -> None:
    unknown = ParallaxError("x", details={"code": "NEW_THING", "status": 404})
    assert output.exit_code_for(unknown) == output.EXIT_NOT_FOUND
    forbidden = ParallaxError("x", details={"code": "DEVICE_FORBIDDEN", "status": 403})
    assert output.exit_code_for(forbidden) == output.EXIT_FORBIDDEN


def test_error_text_is_code_message_and_hint() -> None:
    text = output.error_text(ConflictError("name taken", resolution="pick another"))
    assert text == "error [CONFLICT]: name taken\nhint: pick another"


def test_error_text_shows_an_unknown_code_as_sent() -> None:
    text = output.error_text(ParallaxError("odd", details={"code": "NEW_THING"}))
    assert text.startswith("error [NEW_THING]: odd")


@pytest.mark.parametrize(
    ("size", "shown"),
    [(None, "-"), (0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (64 * 1024**2, "64.0 MiB")],
)
def test_human_bytes(size: int | None, shown: str) -> None:
    assert output.human_bytes(size) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "-"), (5, "5s"), (65, "1m5s"), (3700, "1h1m"), (90000, "1d1h")],
)
def test_human_duration(seconds: float | None, shown: str) -> None:
    assert output.human_duration(seconds) == shown


def test_age_of_a_never_started_container_is_a_dash() -> None:
    assert output.age("0001-01-01T00:00:00Z") == "-"
    now = datetime(2026, 1, 1, 0, 2, 0, tzinfo=UTC)
    assert output.age("2026-01-01T00:00:00Z", now) == "2m0s"


def test_agents_table_has_one_row_per_agent_with_status() -> None:
    agents = [
        AgentHandle.model_validate(handle_json("agent-a", status="ready", role="dev")),
        AgentHandle.model_validate(handle_json("agent-b", status="error")),
    ]
    text = render(output.agents_table(agents))
    lines = text.strip().splitlines()
    assert lines[0].split()[:4] == ["ID", "NAME", "TYPE", "STATUS"]
    assert "agent-a" in lines[1] and "ready" in lines[1] and "dev" in lines[1]
    assert "agent-b" in lines[2] and "error" in lines[2]


def test_stale_agents_are_marked_in_the_table() -> None:
    agent = AgentHandle.model_validate(handle_json(stale=True))
    assert "ready (stale)" in render(output.agents_table([agent]))


def test_agent_detail_lists_env_keys_and_the_error() -> None:
    agent = AgentHandle.model_validate(
        handle_json(envKeys=["A_KEY"], status="error", error="exited 3", errorCode="HEALTH")
    )
    text = render(output.agent_detail(agent))
    assert "A_KEY" in text
    assert "[HEALTH] exited 3" in text


def test_metrics_table_shows_sizes_and_percentages() -> None:
    sample = MetricsResponse.model_validate(
        {
            "agentId": "agent-1",
            "cpu": 12.345,
            "cpuHostPercent": 3.1,
            "cpuLimit": 0.5,
            "memory": 32 * 1024**2,
            "memoryLimit": 64 * 1024**2,
            "memoryPercent": 50.0,
            "pids": 4,
            "network": {"rxBytes": 2048, "txBytes": 0},
            "uptime": 75,
            "timestamp": "2026-01-01T00:00:00Z",
        }
    )
    text = render(output.metrics_table([sample], {"agent-1": "helper"}))
    row = text.strip().splitlines()[1]
    for shown in ("helper (agent-1)", "12.3", "32.0 MiB", "64.0 MiB", "50.0", "2.0 KiB", "1m15s"):
        assert shown in row


def test_json_output_uses_the_api_names() -> None:
    agent = AgentHandle.model_validate(handle_json("agent-j"))
    body = json.loads(output.to_json({"agents": [agent], "count": 1}))
    assert body["agents"][0]["containerName"] == "parallax-agent-j"
    assert json.loads(output.to_json(agent))["envKeys"] == []
