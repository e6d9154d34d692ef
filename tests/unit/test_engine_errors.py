"""Engine errors -> project errors (parallax_docker.backends.docker.errors)."""

from __future__ import annotations

import json

import aiohttp
import pytest

from parallax_docker.backends.docker.engine import EngineAPIError
from parallax_docker.backends.docker.errors import (
    Action,
    Subject,
    build_failure,
    engine_call,
    idempotent_call,
    stream_failure,
    translate,
    warnings_failure,
)
from parallax_docker.errors import (
    AgentNotFoundError,
    AgentStateError,
    ConflictError,
    EngineError,
    ImageNotFoundError,
    InsecureSpawnError,
    NetworkError,
    NotFoundError,
    ParallaxError,
    SocketError,
    ValidationError,
    VolumeInUseError,
)

ENGINE_MESSAGE = "engine-said: env SECRET=sk-SECRET-123 refused"


def answer(status: int) -> EngineAPIError:
    return EngineAPIError(status, ENGINE_MESSAGE, "POST", "/v1.41/x")


def test_404_on_an_image_is_image_not_found() -> None:
    error = translate(answer(404), "image", "inspect", "parallax/agent-claude:latest")
    assert isinstance(error, ImageNotFoundError)
    assert error is not None and "parallax/agent-claude:latest" in error.message


@pytest.mark.parametrize("action", ["inspect", "start", "stop", "restart", "update", "logs"])
def test_404_on_a_container_is_agent_not_found(action: Action) -> None:
    assert isinstance(translate(answer(404), "container", action, "abc"), AgentNotFoundError)


def test_404_creating_an_exec_names_the_missing_container() -> None:
    assert isinstance(translate(answer(404), "exec", "create", "abc"), AgentNotFoundError)


def test_404_on_a_network_is_a_network_error() -> None:
    error = translate(answer(404), "network", "connect", "parallax-agents")
    assert isinstance(error, NetworkError) and error.code == "NETWORK_ERROR"


def test_404_on_a_volume_is_not_found() -> None:
    error = translate(answer(404), "volume", "inspect", "v")
    assert type(error) is NotFoundError and error.http_status == 404


@pytest.mark.parametrize(("subject", "action"), [("exec", "inspect"), ("engine", "events")])
def test_404_on_other_subjects_is_an_engine_error(subject: Subject, action: Action) -> None:
    assert type(translate(answer(404), subject, action, "x")) is EngineError


@pytest.mark.parametrize(
    ("subject", "action", "status"),
    [
        ("container", "stop", 304),
        ("container", "start", 304),
        ("container", "kill", 409),
        ("container", "remove", 404),
        ("container", "remove", 409),
        ("volume", "remove", 404),
        ("network", "remove", 404),
    ],
)
def test_answers_meaning_already_done_translate_to_none(
    subject: Subject, action: Action, status: int
) -> None:
    assert translate(answer(status), subject, action, "x") is None


def test_409_removing_a_volume_is_volume_in_use() -> None:
    error = translate(answer(409), "volume", "remove", "v")
    assert isinstance(error, VolumeInUseError) and error.http_status == 409


@pytest.mark.parametrize("action", ["create", "start"])
def test_409_on_an_exec_is_an_agent_that_is_not_running(action: Action) -> None:
    error = translate(answer(409), "exec", action, "abc")
    assert isinstance(error, AgentStateError) and "not running" in error.message


@pytest.mark.parametrize("action", ["create", "rename"])
def test_409_creating_or_renaming_a_container_is_a_name_conflict(action: Action) -> None:
    error = translate(answer(409), "container", action, "parallax-a")
    assert type(error) is ConflictError and error.code == "CONFLICT"


def test_409_updating_a_container_is_an_agent_state_error() -> None:
    assert isinstance(translate(answer(409), "container", "update", "x"), AgentStateError)


def test_403_removing_a_network_with_containers_is_a_conflict() -> None:
    assert type(translate(answer(403), "network", "remove", "n")) is ConflictError


def test_400_is_a_validation_error() -> None:
    error = translate(answer(400), "container", "create", "x")
    assert isinstance(error, ValidationError) and error.http_status == 422


@pytest.mark.parametrize("status", [500, 503, 401, 418])
def test_other_statuses_are_engine_errors(status: int) -> None:
    error = translate(answer(status), "container", "start", "x")
    assert type(error) is EngineError and error.code == "ENGINE_ERROR"


def test_a_refused_build_keeps_the_engines_words_about_the_users_build() -> None:
    refused = EngineAPIError(400, "Cannot locate specified Dockerfile: Dockerfile.x")
    error = translate(refused, "image", "build", "parallax/agent-base:latest")
    assert isinstance(error, EngineError)
    assert error.message == (
        "building parallax/agent-base:latest failed: Cannot locate specified Dockerfile: "
        "Dockerfile.x"
    )


@pytest.mark.parametrize(
    "exc",
    [
        aiohttp.ClientConnectionError("refused"),
        aiohttp.ServerDisconnectedError(),
        ConnectionRefusedError(111, "refused"),
        FileNotFoundError(2, "no socket"),
    ],
)
def test_connection_failures_are_socket_errors(exc: BaseException) -> None:
    error = translate(exc, "container", "inspect", "x")
    assert isinstance(error, SocketError) and error.code == "SOCKET_ERROR"


def test_timeouts_are_socket_errors() -> None:
    error = translate(TimeoutError(), "container", "inspect", "x")
    assert isinstance(error, SocketError) and "in time" in error.message


def test_an_unreadable_answer_is_an_engine_error() -> None:
    error = translate(json.JSONDecodeError("x", "{", 0), "container", "inspect", "x")
    assert type(error) is EngineError and "unreadable" in error.message


def test_a_project_error_stays_as_it_is() -> None:
    original = ConflictError("taken")
    assert translate(original, "container", "create") is original


def test_anything_else_is_an_engine_error_naming_only_the_class() -> None:
    error = translate(RuntimeError(ENGINE_MESSAGE), "container", "inspect", "x")
    assert type(error) is EngineError and error is not None
    assert "RuntimeError" in error.message


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 418, 500])
@pytest.mark.parametrize("subject", ["container", "image", "network", "volume", "engine", "exec"])
def test_the_engines_message_never_reaches_the_project_error(status: int, subject: Subject) -> None:
    for action in ("create", "remove", "inspect", "start"):
        error = translate(answer(status), subject, action, "x")
        body = str(error.to_body()) if error is not None else ""
        assert "sk-SECRET-123" not in body and "engine-said" not in body


async def test_engine_call_translates_and_chains_the_engine_error() -> None:
    original = answer(404)
    with pytest.raises(ImageNotFoundError) as info:
        async with engine_call("image", "inspect", "img:1"):
            raise original
    assert info.value.__cause__ is original


async def test_engine_call_does_not_take_an_already_done_answer_as_success() -> None:
    with pytest.raises(EngineError):
        async with engine_call("container", "stop", "x"):
            raise answer(304)


async def test_idempotent_call_ends_quietly_on_an_already_done_answer() -> None:
    reached = []
    async with idempotent_call("container", "stop", "x"):
        reached.append(1)
        raise answer(304)
    assert reached == [1]


async def test_idempotent_call_still_raises_real_failures() -> None:
    with pytest.raises(AgentNotFoundError):
        async with idempotent_call("container", "stop", "x"):
            raise answer(404)


async def test_engine_call_translates_a_timeout() -> None:
    with pytest.raises(SocketError):
        async with engine_call("container", "inspect", "x"):
            raise TimeoutError


async def test_engine_call_lets_project_errors_through_unchanged() -> None:
    original = AgentNotFoundError("gone")
    with pytest.raises(AgentNotFoundError) as info:
        async with engine_call("container", "inspect", "x"):
            raise original
    assert info.value is original


async def test_engine_call_does_not_swallow_programming_errors() -> None:
    with pytest.raises(KeyError):
        async with engine_call("container", "inspect", "x"):
            raise KeyError("bug")


async def test_engine_call_only_lets_project_errors_out_of_an_oserror() -> None:
    with pytest.raises(ParallaxError):
        async with engine_call("container", "inspect", "x"):
            raise PermissionError(13, "denied")


# -- builds and limits --------------------------------------------------------------------------


def test_a_failed_run_step_is_reported_by_its_exit_code() -> None:
    message = "The command '/bin/sh -c make SECRET=1' returned a non-zero code: 2"
    assert build_failure("build", "t", message).message == "the step exited with code 2"


def test_a_failed_pull_says_what_to_do() -> None:
    error = build_failure("pull", "debian:bookworm-slim", "no such host")
    assert error.message == "cannot pull debian:bookworm-slim: no such host"
    assert "debootstrap" in error.resolution


def test_stream_failure_reads_the_error_detail_or_the_error() -> None:
    assert stream_failure({"stream": "Step 1/2"}) is None
    assert stream_failure({"errorDetail": {"message": "detail"}, "error": "short"}) == "detail"
    assert stream_failure({"error": "short"}) == "short"


def test_engine_warnings_fail_closed() -> None:
    assert warnings_failure({"Warnings": None}) is None
    assert warnings_failure({"Warnings": ["", None]}) is None
    error = warnings_failure({"Warnings": ["Your kernel does not support swap limit"]})
    assert isinstance(error, InsecureSpawnError) and "swap limit" in error.message
