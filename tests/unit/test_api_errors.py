"""The HTTP API's error contract, against a fake backend (no Docker engine).

Every error body is ``{error, code, resolution}`` (plus optional ``details``), with a status that
fits the code, and never echoes a submitted value or an exception's text.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from parallax_docker.api.app import create_app
from parallax_docker.config import load_settings
from parallax_docker.errors import SocketError
from tests.unit.fakes import FakeBackend, FakeDeployment, as_deployment, image, unit_environ

SECRET = "sk-SECRET-123"
MAX_BODY = 4096
ERROR_KEYS = {"error", "code", "resolution"}


@pytest.fixture
def deployment() -> FakeDeployment:
    made = FakeDeployment()
    made.fake.images["parallax/agent-claude:latest"] = image()
    return made


@pytest.fixture
def fake(deployment: FakeDeployment) -> FakeBackend:
    return deployment.fake


def make_app(deployment: FakeDeployment) -> FastAPI:
    settings = load_settings(environ=unit_environ(PARALLAX_MAX_BODY_BYTES=str(MAX_BODY)))
    return create_app(settings, as_deployment(deployment))


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``app`` with its lifespan (and so its reconciler) running."""
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as http,
    ):
        yield http


@pytest.fixture
def app(deployment: FakeDeployment) -> FastAPI:
    return make_app(deployment)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(app) as http:
        yield http


@pytest.fixture
async def down_client(deployment: FakeDeployment) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose engine has been unreachable from the start."""
    deployment.fake.fail["ping"] = SocketError("cannot connect to the Docker engine")
    async with serve(make_app(deployment)) as http:
        yield http


@pytest.fixture
async def ready(app: FastAPI, client: httpx.AsyncClient) -> httpx.AsyncClient:
    """The client once the reconciler has reached the (fake) engine."""
    await asyncio.wait_for(app.state.runtime.reconciler.synced.wait(), timeout=2)
    return client


def spawn_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "coder", "type": "claude"}
    body.update(fields)
    return body


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert (response.status_code, response.headers["content-type"]) == (status, "application/json")
    body: dict[str, Any] = response.json()
    assert set(body) - {"details"} == ERROR_KEYS
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["resolution"], str) and body["resolution"]
    return body


# -- shape of routing errors ------------------------------------------------------------------


async def test_an_unknown_route_is_404_not_found_in_the_error_shape(
    client: httpx.AsyncClient,
) -> None:
    assert_error(await client.get("/no-such-route"), 404, "NOT_FOUND")


async def test_an_unknown_route_under_api_is_404_not_found(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/no-such-route"), 404, "NOT_FOUND")


async def test_a_wrong_method_is_405_in_the_error_shape(client: httpx.AsyncClient) -> None:
    assert_error(await client.delete("/health"), 405, "METHOD_NOT_ALLOWED")


async def test_an_unknown_agent_is_404_agent_not_found(ready: httpx.AsyncClient) -> None:
    body = assert_error(await ready.get("/agents/agent-nope"), 404, "AGENT_NOT_FOUND")
    assert "details" not in body


async def test_routes_answer_under_api_too(ready: httpx.AsyncClient) -> None:
    response = await ready.get("/api/agents")
    assert (response.status_code, response.json()) == (200, {"agents": [], "count": 0})


async def test_health_answers_under_api_too(ready: httpx.AsyncClient) -> None:
    response = await ready.get("/api/health")
    assert (response.status_code, response.json()["healthy"]) == (200, True)


# -- request validation -----------------------------------------------------------------------


async def test_an_unknown_field_is_refused_with_422_validation_error(
    ready: httpx.AsyncClient, fake: FakeBackend
) -> None:
    body = assert_error(
        await ready.post("/agents", json=spawn_body(privileged=True)), 422, "VALIDATION_ERROR"
    )
    assert body["details"] == {"fields": ["privileged"]}
    assert fake.called("create") == []


async def test_an_unknown_nested_field_is_refused(ready: httpx.AsyncClient) -> None:
    response = await ready.post("/agents", json=spawn_body(resources={"memory": "1g", "swap": 1}))
    assert assert_error(response, 422, "VALIDATION_ERROR")["details"] == {
        "fields": ["resources.swap"]
    }


async def test_a_missing_field_is_refused_naming_it(ready: httpx.AsyncClient) -> None:
    body = assert_error(
        await ready.post("/agents", json={"type": "claude"}), 422, "VALIDATION_ERROR"
    )
    assert "name" in body["error"]


async def test_a_body_that_is_not_json_is_refused_with_422(ready: httpx.AsyncClient) -> None:
    response = await ready.post(
        "/agents", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(response, 422, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "fields",
    [
        {"env": {"BAD KEY": SECRET}},
        {"env": {"KEY": [SECRET]}},
        {"env": {"KEY": {"nested": SECRET}}},
        {"credentials": {"anthropicKey": 12345, "openaiKey": [SECRET]}},
        {"credentials": {"custom": {"bad-name": SECRET}}},
        {"type": SECRET},
        {"name": SECRET * 10},
        {"labels": {"team": [SECRET]}},
    ],
)
async def test_a_refused_request_never_echoes_a_submitted_value(
    ready: httpx.AsyncClient, fields: dict[str, Any]
) -> None:
    response = await ready.post("/agents", json=spawn_body(**fields))
    assert response.status_code == 422
    assert SECRET not in response.text


async def test_an_invalid_env_key_is_refused_with_422(
    ready: httpx.AsyncClient, fake: FakeBackend
) -> None:
    response = await ready.post("/agents", json=spawn_body(env={"BAD KEY": SECRET}))
    assert_error(response, 422, "VALIDATION_ERROR")
    assert fake.called("create") == []


async def test_a_bad_memory_string_is_refused_with_422_validation_error(
    ready: httpx.AsyncClient,
) -> None:
    response = await ready.post("/agents", json=spawn_body(resources={"memory": "lots"}))
    assert_error(response, 422, "VALIDATION_ERROR")


async def test_memory_above_the_host_is_refused_with_422_limit_above_host(
    ready: httpx.AsyncClient,
) -> None:
    response = await ready.post("/agents", json=spawn_body(resources={"memory": "1024g"}))
    assert_error(response, 422, "LIMIT_ABOVE_HOST")


async def test_a_boolean_cpu_is_refused_with_422(ready: httpx.AsyncClient) -> None:
    response = await ready.post("/agents", json=spawn_body(resources={"cpu": True}))
    assert_error(response, 422, "VALIDATION_ERROR")


async def test_a_forbidden_mount_is_refused_with_403_volume_forbidden(
    ready: httpx.AsyncClient, fake: FakeBackend
) -> None:
    response = await ready.post("/agents", json=spawn_body(volumes=["/etc:/data:ro"]))
    assert_error(response, 403, "VOLUME_FORBIDDEN")
    assert fake.called("create") == []


async def test_the_host_network_is_refused_with_403_network_forbidden(
    ready: httpx.AsyncClient,
) -> None:
    response = await ready.post("/agents", json=spawn_body(network="host"))
    assert_error(response, 403, "NETWORK_FORBIDDEN")


async def test_a_reserved_label_is_refused_with_422(ready: httpx.AsyncClient) -> None:
    response = await ready.post("/agents", json=spawn_body(labels={"parallax.managed": "false"}))
    assert_error(response, 422, "VALIDATION_ERROR")


async def test_an_unknown_status_filter_is_refused_with_422(ready: httpx.AsyncClient) -> None:
    assert_error(await ready.get("/agents", params={"status": "zombie"}), 422, "VALIDATION_ERROR")


async def test_a_log_tail_out_of_bounds_is_refused_with_422(ready: httpx.AsyncClient) -> None:
    response = await ready.get("/agents/agent-1/logs", params={"tail": 10_001})
    assert_error(response, 422, "VALIDATION_ERROR")


# -- body size --------------------------------------------------------------------------------


async def test_a_body_over_the_limit_by_content_length_is_413(
    ready: httpx.AsyncClient, fake: FakeBackend
) -> None:
    response = await ready.post(
        "/agents",
        content=b" " * (MAX_BODY + 1),
        headers={"content-type": "application/json"},
    )
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert fake.called("create") == []


async def test_a_body_at_the_limit_is_read(ready: httpx.AsyncClient) -> None:
    body = b'{"name": "coder", "type": "claude", "role": "x"}'.ljust(MAX_BODY)
    response = await ready.post(
        "/agents", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 201


async def _chunks(total: int, size: int = 1000) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        chunk = b" " * min(size, total - sent)
        sent += len(chunk)
        yield chunk


async def test_a_chunked_body_over_the_limit_is_413(ready: httpx.AsyncClient) -> None:
    response = await ready.post(
        "/agents", content=_chunks(MAX_BODY * 2), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


async def test_a_chunked_body_over_the_limit_is_refused_before_create(
    ready: httpx.AsyncClient, fake: FakeBackend
) -> None:
    response = await ready.post(
        "/agents", content=_chunks(MAX_BODY * 2), headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500
    assert fake.called("create") == []


# -- engine-side failures ---------------------------------------------------------------------


async def test_an_unexpected_backend_exception_is_500_internal_error_without_its_text(
    ready: httpx.AsyncClient, fake: FakeBackend
) -> None:
    fake.fail["get_image"] = RuntimeError(f"boom {SECRET} /usr/lib/python3/x.py line 3")
    response = await ready.post("/agents", json=spawn_body())
    body = assert_error(response, 500, "INTERNAL_ERROR")
    assert SECRET not in response.text
    assert "RuntimeError" not in response.text
    assert "Traceback" not in response.text
    assert "details" not in body


async def test_a_missing_image_is_404_image_not_found_naming_the_build_command(
    ready: httpx.AsyncClient, fake: FakeBackend
) -> None:
    fake.images.clear()
    body = assert_error(await ready.post("/agents", json=spawn_body()), 404, "IMAGE_NOT_FOUND")
    assert "parallax-docker images build claude" in body["resolution"]


async def test_health_is_503_socket_error_when_the_engine_is_unreachable(
    down_client: httpx.AsyncClient,
) -> None:
    response = await down_client.get("/health")
    body = response.json()
    assert (response.status_code, body["healthy"], body["code"]) == (503, False, "SOCKET_ERROR")
    assert body["runtime"]["name"] == "docker"


async def test_health_is_200_when_the_engine_answers(ready: httpx.AsyncClient) -> None:
    body = (await ready.get("/health")).json()
    assert (body["healthy"], body["runtime"]["type"], body["runtime"]["activeAgents"]) == (
        True,
        "docker",
        0,
    )
    assert "code" not in body


async def test_spawn_while_the_engine_is_down_is_503_socket_error(
    down_client: httpx.AsyncClient, fake: FakeBackend
) -> None:
    response = await down_client.post("/agents", json=spawn_body())
    assert_error(response, 503, "SOCKET_ERROR")
    assert fake.called("create") == []


# -- spawn through the fake -------------------------------------------------------------------


async def test_spawn_answers_201_with_env_keys_and_no_env_values(ready: httpx.AsyncClient) -> None:
    response = await ready.post(
        "/agents", json=spawn_body(env={"FOO": SECRET}, credentials={"githubToken": SECRET})
    )
    assert response.status_code == 201
    assert response.json()["envKeys"] == ["FOO", "GITHUB_TOKEN"]
    assert SECRET not in response.text


async def test_a_duplicate_name_is_409_conflict(ready: httpx.AsyncClient) -> None:
    assert (await ready.post("/agents", json=spawn_body())).status_code == 201
    assert_error(await ready.post("/agents", json=spawn_body()), 409, "CONFLICT")


async def test_a_duplicate_id_is_409_conflict(ready: httpx.AsyncClient) -> None:
    first = await ready.post("/agents", json=spawn_body(id="agent-1", name="one"))
    assert first.status_code == 201
    second = await ready.post("/agents", json=spawn_body(id="agent-1", name="two"))
    assert_error(second, 409, "CONFLICT")
