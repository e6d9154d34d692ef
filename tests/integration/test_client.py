"""The Python client (sync and asyncio) against the real service on the real engine."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from parallax_docker.client import (
    AgentNotFoundError,
    AsyncClient,
    Client,
    ConflictError,
    ImageNotFoundError,
    ServiceUnreachableError,
    UnauthorizedError,
    ValidationError,
    VolumeForbiddenError,
)
from parallax_docker.models import AgentHandle, AgentStatus
from tests.integration.conftest import agent_body
from tests.support.engine import Engine
from tests.support.server import ServiceProcess, free_port

# Prints numbered lines, one every 0.2 s, after it is ready; stops at once on SIGTERM.
TICKER = [
    "/bin/sh",
    "-c",
    "trap 'exit 0' TERM; touch /tmp/ready; i=0; "
    "while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done",
]


@pytest.fixture(scope="module")
def client(service: ServiceProcess) -> Iterator[Client]:
    with Client(service.url, environ={}) as made:
        yield made


@pytest.fixture
def spawn_agent(client: Client, engine: Engine) -> Iterator[Callable[..., AgentHandle]]:
    made: list[str] = []

    def do(**fields: Any) -> AgentHandle:
        handle = client.spawn(**agent_body(**fields))
        made.append(handle.container_name)
        return handle

    yield do
    for name in made:
        engine.remove_container(name)


@pytest.fixture(scope="module")
def ticker(service: ServiceProcess, engine: Engine) -> Iterator[AgentHandle]:
    """One long-lived agent shared by the read-only tests of this module."""
    with Client(service.url, environ={}) as client:
        handle = client.spawn(**agent_body(command=TICKER, role="reader"))
    yield handle
    engine.remove_container(handle.container_name)


def test_spawn_returns_a_ready_handle(spawn_agent: Callable[..., AgentHandle]) -> None:
    handle = spawn_agent(env={"SECRET_KEY": "v"}, capabilities=["read"])
    assert handle.status == AgentStatus.READY
    assert handle.env_keys == ["SECRET_KEY"]
    assert handle.capabilities == ["read"]
    assert handle.container_name == f"parallax-{handle.id}"


def test_get_finds_the_agent_by_id(client: Client, ticker: AgentHandle) -> None:
    found = client.get(ticker.id)
    assert (found.id, found.name, found.role) == (ticker.id, ticker.name, "reader")


def test_list_filters_by_role_and_status(client: Client, ticker: AgentHandle) -> None:
    assert ticker.id in [a.id for a in client.list(role="reader", status=["ready", "busy"])]
    assert ticker.id not in [a.id for a in client.list(role="nobody")]


def test_logs_return_the_agents_output(client: Client, ticker: AgentHandle) -> None:
    deadline = time.monotonic() + 10
    lines: list[str] = []
    while time.monotonic() < deadline and len(lines) < 2:
        lines = client.logs(ticker.id, tail=2)
        time.sleep(0.1)
    assert len(lines) == 2
    assert all(line.startswith("tick-") for line in lines)


def test_stream_logs_yields_new_lines_as_they_come(client: Client, ticker: AgentHandle) -> None:
    stream = client.stream_logs(ticker.id, tail=0)
    try:
        first = next(stream)
        second = next(stream)
    finally:
        stream.close()
    assert first.startswith("tick-") and second.startswith("tick-")
    assert int(second.removeprefix("tick-")) == int(first.removeprefix("tick-")) + 1


def test_metrics_report_the_agents_limits(client: Client, ticker: AgentHandle) -> None:
    sample = client.metrics(ticker.id)
    assert sample.agent_id == ticker.id
    assert sample.memory_limit == 64 * 1024 * 1024
    assert sample.pids >= 1


def test_restart_brings_the_agent_back_ready(
    client: Client, spawn_agent: Callable[..., AgentHandle]
) -> None:
    handle = spawn_agent(command=TICKER)
    restarted = client.restart(handle.id)
    assert restarted.status == AgentStatus.READY
    assert restarted.started_at != handle.started_at


def test_stop_removes_the_container(
    client: Client, spawn_agent: Callable[..., AgentHandle], engine: Engine
) -> None:
    handle = spawn_agent(command=TICKER)
    client.stop(handle.id, timeout_ms=2000)
    assert engine.inspect(handle.container_name) is None
    with pytest.raises(AgentNotFoundError):
        client.get(handle.id)


def test_health_reports_the_engine(client: Client) -> None:
    health = client.health()
    assert health.healthy is True
    assert health.runtime.engine_version


# -- errors come back as their classes --------------------------------------------------------


def test_unknown_agent_is_agent_not_found(client: Client) -> None:
    with pytest.raises(AgentNotFoundError) as caught:
        client.get(f"no-such-{uuid.uuid4().hex[:6]}")
    assert caught.value.resolution


def test_duplicate_name_is_conflict(
    client: Client, spawn_agent: Callable[..., AgentHandle]
) -> None:
    handle = spawn_agent()
    with pytest.raises(ConflictError):
        spawn_agent(name=handle.name)


def test_missing_image_is_image_not_found(client: Client, engine: Engine) -> None:
    with pytest.raises(ImageNotFoundError):
        client.spawn(**agent_body(image="parallax-test/never-built:latest"))


def test_forbidden_mount_is_volume_forbidden(client: Client) -> None:
    with pytest.raises(VolumeForbiddenError):
        client.spawn(**agent_body(volumes=["/var/run/docker.sock:/sock"]))


def test_bad_memory_string_is_a_validation_error_from_the_server(client: Client) -> None:
    with pytest.raises(ValidationError):
        client.spawn(**agent_body(resources={"memory": "lots"}))


def test_nothing_listening_is_service_unreachable() -> None:
    with (
        Client(f"http://127.0.0.1:{free_port()}", environ={}, timeout_s=5) as client,
        pytest.raises(ServiceUnreachableError),
    ):
        client.health()


# -- gc, send, events, auth: the routes other issues add ---------------------------------------


def test_gc_dry_run_reports_without_removing(client: Client, service: ServiceProcess) -> None:
    report = client.gc(dry_run=True)
    assert report.removed is False


def test_send_returns_the_echo_agents_answer_and_keeps_the_conversation(
    client: Client, spawn_agent: Callable[..., AgentHandle], agent_image: Callable[[str], str]
) -> None:
    handle = spawn_agent(image=agent_image("echo"), resources={"memory": "128m", "cpu": 0.5})
    message = "line one\n'quoted' $(not run) `nor this`"
    result = client.send(handle.id, message, expect_response=True, timeout_ms=30_000)
    assert result.sent is True
    assert result.response is not None and result.response.content == message
    conversation = client.messages(handle.id)
    assert [(m.direction, m.content) for m in conversation] == [
        ("inbound", message),
        ("outbound", message),
    ]


def test_events_stream_the_lifecycle_of_an_agent(
    client: Client, service: ServiceProcess, engine: Engine
) -> None:
    agent_id = f"ev-{uuid.uuid4().hex[:8]}"
    seen: list[str] = []
    with client.events(agent_id=agent_id) as stream:
        handle = client.spawn(**agent_body(id=agent_id, command=TICKER))
        try:
            client.stop(agent_id, timeout_ms=1000)
            deadline = time.monotonic() + 20
            while "agent_stopped" not in seen and time.monotonic() < deadline:
                frame = stream.receive(timeout_s=max(0.1, deadline - time.monotonic()))
                assert frame.agent is not None and frame.agent.id == agent_id
                seen.append(frame.event)
        finally:
            engine.remove_container(handle.container_name)
    assert seen[:2] == ["agent_started", "agent_ready"]
    assert "agent_stopped" in seen


async def test_async_events_stream_the_lifecycle_of_an_agent(
    service: ServiceProcess, engine: Engine
) -> None:
    agent_id = f"ev-{uuid.uuid4().hex[:8]}"
    async with (
        AsyncClient(service.url, environ={}) as client,
        client.events(agent_id=agent_id) as stream,
    ):
        handle = await client.spawn(**agent_body(id=agent_id, command=TICKER))
        try:
            first = await stream.receive(timeout_s=20)
            second = await stream.receive(timeout_s=20)
        finally:
            engine.remove_container(handle.container_name)
    assert (first.event, second.event) == ("agent_started", "agent_ready")


def secured_service(start: Callable[..., ServiceProcess], token: str) -> ServiceProcess:
    """A service that needs ``token``, once it answers /health with it."""
    proc = start({"PARALLAX_API_TOKEN": token}, wait_healthy=False)
    deadline = time.monotonic() + 30
    with Client(proc.url, token=token, environ={}, timeout_s=2) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(ServiceUnreachableError):
                health = client.health()
                if health.runtime.synced:
                    return proc
            time.sleep(0.1)
    raise AssertionError(f"the secured service never came up: {proc.logs()[-1000:]}")


def test_a_service_with_a_token_refuses_a_client_without_it(
    start_service: Callable[..., ServiceProcess],
) -> None:
    secured = secured_service(start_service, "tok-" + uuid.uuid4().hex)
    with Client(secured.url, environ={}) as client, pytest.raises(UnauthorizedError):
        client.list()


def test_a_client_with_the_token_is_let_in(
    start_service: Callable[..., ServiceProcess],
) -> None:
    token = "tok-" + uuid.uuid4().hex
    secured = secured_service(start_service, token)
    with Client(secured.url, environ={"PARALLAX_API_TOKEN": token}) as client:
        assert isinstance(client.list(), list)


# -- the asyncio client --------------------------------------------------------------------------


async def test_async_client_spawns_streams_and_stops(
    service: ServiceProcess, engine: Engine
) -> None:
    async with AsyncClient(service.url, environ={}) as client:
        handle = await client.spawn(**agent_body(command=TICKER))
        try:
            stream = client.stream_logs(handle.id)
            async with contextlib.aclosing(stream):
                line = await anext(stream)
            assert line.startswith("tick-")
            assert (await client.metrics(handle.id)).agent_id == handle.id
            await client.stop(handle.id, timeout_ms=2000)
            with pytest.raises(AgentNotFoundError):
                await client.get(handle.id)
        finally:
            engine.remove_container(handle.container_name)
