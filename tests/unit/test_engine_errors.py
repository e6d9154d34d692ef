"""Engine errors -> project errors (parallax_docker.backends.docker.errors)."""

from __future__ import annotations

import aiodocker
import aiohttp
import pytest

from parallax_docker.backends.docker.errors import Subject, engine_call, translate
from parallax_docker.errors import (
    AgentNotFoundError,
    ConflictError,
    EngineError,
    ImageNotFoundError,
    NetworkError,
    ParallaxError,
    SocketError,
    ValidationError,
)

ENGINE_MESSAGE = "engine-said: env SECRET=sk-SECRET-123 refused"


def docker_error(status: int) -> aiodocker.DockerError:
    return aiodocker.DockerError(status, ENGINE_MESSAGE)


def test_translate_maps_404_on_an_image_to_image_not_found() -> None:
    error = translate(docker_error(404), "image", "parallax/agent-claude:latest")
    assert isinstance(error, ImageNotFoundError)
    assert "parallax/agent-claude:latest" in error.message


def test_translate_maps_404_on_a_container_to_agent_not_found() -> None:
    assert isinstance(translate(docker_error(404), "container", "abc"), AgentNotFoundError)


def test_translate_maps_404_on_a_network_to_network_error() -> None:
    error = translate(docker_error(404), "network", "parallax-agents")
    assert isinstance(error, NetworkError)
    assert error.code == "NETWORK_ERROR"


@pytest.mark.parametrize("subject", ["volume", "exec", "engine"])
def test_translate_maps_404_on_other_subjects_to_engine_error(subject: Subject) -> None:
    assert type(translate(docker_error(404), subject, "x")) is EngineError


@pytest.mark.parametrize("subject", ["container", "network", "volume"])
def test_translate_maps_409_to_conflict(subject: Subject) -> None:
    error = translate(docker_error(409), subject, "x")
    assert isinstance(error, ConflictError)
    assert error.code == "CONFLICT"


def test_translate_maps_400_to_validation_error() -> None:
    error = translate(docker_error(400), "container", "x")
    assert isinstance(error, ValidationError)
    assert error.http_status == 422


@pytest.mark.parametrize("status", [500, 503])
def test_translate_maps_5xx_to_engine_error(status: int) -> None:
    error = translate(docker_error(status), "container", "x")
    assert type(error) is EngineError
    assert error.code == "ENGINE_ERROR"


def test_translate_maps_the_connection_failure_status_to_socket_error() -> None:
    assert isinstance(translate(docker_error(900), "engine"), SocketError)


@pytest.mark.parametrize(
    "exc",
    [
        aiohttp.ClientConnectionError("refused"),
        aiohttp.ServerDisconnectedError(),
        ConnectionRefusedError(111, "refused"),
        FileNotFoundError(2, "no socket"),
    ],
)
def test_translate_maps_connection_failures_to_socket_error(exc: BaseException) -> None:
    error = translate(exc, "container", "x")
    assert isinstance(error, SocketError)
    assert error.code == "SOCKET_ERROR"


def test_translate_maps_timeouts_to_socket_error() -> None:
    error = translate(TimeoutError(), "container", "x")
    assert isinstance(error, SocketError)
    assert "in time" in error.message


def test_translate_keeps_a_project_error_as_it_is() -> None:
    original = ConflictError("taken")
    assert translate(original, "container") is original


def test_translate_maps_anything_else_to_engine_error_naming_only_the_class() -> None:
    error = translate(RuntimeError(ENGINE_MESSAGE), "container", "x")
    assert type(error) is EngineError
    assert "RuntimeError" in error.message


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 418, 500, 900])
@pytest.mark.parametrize("subject", ["container", "image", "network", "volume", "engine", "exec"])
def test_translate_never_puts_the_engines_message_in_the_project_error(
    status: int, subject: Subject
) -> None:
    error = translate(docker_error(status), subject, "x")
    body = str(error.to_body())
    assert "sk-SECRET-123" not in body
    assert "engine-said" not in body


async def test_engine_call_translates_and_chains_the_engine_error() -> None:
    original = docker_error(404)
    with pytest.raises(ImageNotFoundError) as info:
        async with engine_call("image", "img:1"):
            raise original
    assert info.value.__cause__ is original


async def test_engine_call_translates_a_timeout() -> None:
    with pytest.raises(SocketError):
        async with engine_call("container", "x"):
            raise TimeoutError


async def test_engine_call_lets_project_errors_through_unchanged() -> None:
    original = AgentNotFoundError("gone")
    with pytest.raises(AgentNotFoundError) as info:
        async with engine_call("container", "x"):
            raise original
    assert info.value is original


async def test_engine_call_does_not_swallow_programming_errors() -> None:
    with pytest.raises(KeyError):
        async with engine_call("container", "x"):
            raise KeyError("bug")


async def test_engine_call_only_lets_project_errors_out_of_an_oserror() -> None:
    with pytest.raises(ParallaxError):
        async with engine_call("container", "x"):
            raise PermissionError(13, "denied")
