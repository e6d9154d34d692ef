"""The Python client against httpx.MockTransport: requests it sends, answers and errors it reads."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from parallax_docker.client import (
    AsyncClient,
    BadResponseError,
    Client,
    RequestTimeoutError,
    ServiceUnreachableError,
    code_of,
)
from parallax_docker.client.calls import send_timeout, websocket_url
from parallax_docker.errors import (
    AgentNotFoundError,
    ConflictError,
    ParallaxError,
    RequestError,
    ResourceLimitError,
    ServerError,
    ValidationError,
    all_error_classes,
)

Handler = Callable[[httpx.Request], httpx.Response]


def handle_json(agent_id: str = "agent-1", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": agent_id,
        "name": "helper",
        "type": "custom",
        "status": "ready",
        "containerName": f"parallax-{agent_id}",
        "image": "img:latest",
        "network": "parallax-agents",
        "resources": {
            "memory": "64m",
            "memoryBytes": 67108864,
            "cpu": 0.25,
            "nanoCpus": 250000000,
            "pidsLimit": 512,
        },
    }
    body.update(extra)
    return body


def error_json(code: str, message: str = "failed", resolution: str = "do this") -> dict[str, str]:
    return {"error": message, "code": code, "resolution": resolution}


class Recorder:
    """A MockTransport handler that records requests and answers from a function."""

    def __init__(self, answer: Handler) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def client_for(answer: Handler, **kwargs: Any) -> tuple[Client, Recorder]:
    recorder = Recorder(answer)
    kwargs.setdefault("environ", {})
    client = Client("http://svc:3200", transport=httpx.MockTransport(recorder), **kwargs)
    return client, recorder


def ok(body: Any, status: int = 200) -> Handler:
    return lambda _: httpx.Response(status, json=body)


# -- where and how it connects -----------------------------------------------------------------


def test_url_defaults_to_the_local_service() -> None:
    assert Client(environ={}).url == "http://127.0.0.1:3200"


def test_url_comes_from_parallax_url() -> None:
    assert Client(environ={"PARALLAX_URL": "http://h:9/"}).url == "http://h:9"


def test_url_argument_wins_over_the_environment() -> None:
    assert Client("http://a:1", environ={"PARALLAX_URL": "http://b:2"}).url == "http://a:1"


def test_token_is_sent_as_bearer() -> None:
    client, rec = client_for(ok(handle_json()), token="s3cret")
    client.get("agent-1")
    assert rec.last.headers["authorization"] == "Bearer s3cret"


def test_token_comes_from_parallax_api_token() -> None:
    client, rec = client_for(ok(handle_json()), environ={"PARALLAX_API_TOKEN": "from-env"})
    client.get("agent-1")
    assert rec.last.headers["authorization"] == "Bearer from-env"


def test_no_token_sends_no_authorization_header() -> None:
    client, rec = client_for(ok(handle_json()))
    client.get("agent-1")
    assert "authorization" not in rec.last.headers


def test_websocket_url_follows_the_http_scheme() -> None:
    assert websocket_url("http://h:1", "/ws") == "ws://h:1/ws"
    assert websocket_url("https://h/x", "/ws/events", {"agentId": "a b"}) == (
        "wss://h/x/ws/events?agentId=a+b"
    )


# -- requests ----------------------------------------------------------------------------------


def test_spawn_sends_api_names_for_snake_case_fields() -> None:
    client, rec = client_for(ok(handle_json(), 201))
    client.spawn(name="helper", type="custom", reports_to="lead", auto_restart=True)
    body = json.loads(rec.last.content)
    assert body == {"name": "helper", "type": "custom", "reportsTo": "lead", "autoRestart": True}


def test_spawn_sends_secret_values_unmasked() -> None:
    client, rec = client_for(ok(handle_json(), 201))
    client.spawn(name="h", type="claude", env={"K": "v1"}, credentials={"anthropicKey": "sk-1"})
    body = json.loads(rec.last.content)
    assert body["env"] == {"K": "v1"}
    assert body["credentials"] == {"anthropicKey": "sk-1"}


def test_spawn_returns_the_handle_model() -> None:
    client, _ = client_for(ok(handle_json("agent-7"), 201))
    handle = client.spawn(name="h", type="custom")
    assert handle.id == "agent-7"
    assert handle.container_name == "parallax-agent-7"


def test_spawn_refuses_invalid_fields_without_a_request_or_the_value() -> None:
    client, rec = client_for(ok(handle_json(), 201))
    with pytest.raises(ValidationError) as caught:
        client.spawn(name="h", type="nope", env={"K": "secret-value"})
    assert rec.requests == []
    assert "type" in caught.value.message
    assert "secret-value" not in caught.value.message


def test_list_repeats_each_filter_value() -> None:
    client, rec = client_for(ok({"agents": [handle_json()], "count": 1}))
    agents = client.list(status=["ready", "busy"], type="custom")
    assert rec.last.url.params.get_list("status") == ["ready", "busy"]
    assert rec.last.url.params.get_list("type") == ["custom"]
    assert [a.id for a in agents] == ["agent-1"]


def test_stop_sends_force_and_the_timeout_in_milliseconds() -> None:
    client, rec = client_for(lambda _: httpx.Response(204))
    client.stop("agent-1", force=True, timeout_ms=2500)
    assert rec.last.method == "DELETE"
    assert rec.last.url.path == "/agents/agent-1"
    assert dict(rec.last.url.params) == {"force": "true", "timeout": "2500"}


def test_an_id_with_a_slash_is_refused_before_any_request() -> None:
    client, rec = client_for(ok(handle_json()))
    with pytest.raises(ValidationError):
        client.get("../health")
    assert rec.requests == []


def test_logs_returns_the_lines() -> None:
    client, rec = client_for(ok({"logs": ["a", "b"], "count": 2}))
    assert client.logs("agent-1", tail=2, timestamps=True) == ["a", "b"]
    assert dict(rec.last.url.params) == {"tail": "2", "timestamps": "true"}


def test_stream_logs_yields_lines_of_the_followed_stream() -> None:
    client, rec = client_for(lambda _: httpx.Response(200, text="one\ntwo\n"))
    assert list(client.stream_logs("agent-1")) == ["one", "two"]
    assert rec.last.url.params["follow"] == "true"


def test_stream_logs_raises_the_mapped_error() -> None:
    client, _ = client_for(ok(error_json("AGENT_NOT_FOUND"), 404))
    with pytest.raises(AgentNotFoundError):
        list(client.stream_logs("ghost"))


def message_json(content: str = "hi", kind: str = "response") -> dict[str, Any]:
    return {
        "id": "m-1",
        "agentId": "agent-1",
        "direction": "outbound",
        "type": kind,
        "content": content,
        "metadata": {},
        "timestamp": "2026-01-01T00:00:00Z",
    }


def test_send_body_uses_the_api_names() -> None:
    client, rec = client_for(ok({"sent": True, "response": message_json("hi")}))
    result = client.send("agent-1", "hello", expect_response=True, timeout_ms=5000)
    assert json.loads(rec.last.content) == {
        "message": "hello",
        "expectResponse": True,
        "timeout": 5000,
    }
    assert result.response is not None and result.response.content == "hi"


def test_send_without_waiting_sends_only_the_message() -> None:
    client, rec = client_for(ok({"sent": True}))
    assert client.send("agent-1", "hello").sent is True
    assert json.loads(rec.last.content) == {"message": "hello"}


def test_an_empty_message_is_refused_before_any_request() -> None:
    client, rec = client_for(ok({"sent": True}))
    with pytest.raises(ValidationError):
        client.send("agent-1", "")
    assert rec.requests == []


def test_messages_return_the_conversation() -> None:
    client, rec = client_for(ok({"messages": [message_json("a")], "count": 1}))
    found = client.messages("agent-1", limit=5)
    assert rec.last.url.path == "/agents/agent-1/messages"
    assert rec.last.url.params["limit"] == "5"
    assert [m.content for m in found] == ["a"]


def test_remove_execution_deletes_its_resources() -> None:
    client, rec = client_for(lambda _: httpx.Response(204))
    client.remove_execution("exec-1")
    assert (rec.last.method, rec.last.url.path) == ("DELETE", "/executions/exec-1/resources")


def test_send_waits_for_the_turn_not_the_default_timeout() -> None:
    assert send_timeout(30, False, None).read == 30
    assert send_timeout(30, True, None).read is None
    assert send_timeout(30, True, 600_000).read == 610
    assert send_timeout(30, True, 1_000).read == 30


def test_gc_sends_dry_run() -> None:
    client, rec = client_for(
        ok({"containers": ["c"], "networks": [], "volumes": [], "removed": False})
    )
    report = client.gc(dry_run=True)
    assert rec.last.method == "POST"
    assert rec.last.url.params["dryRun"] == "true"
    assert report.containers == ["c"]


def test_health_503_is_an_answer_not_an_error() -> None:
    body = {
        "healthy": False,
        "message": "down",
        "code": "SOCKET_ERROR",
        "runtime": {"activeAgents": 0},
    }
    client, _ = client_for(ok(body, 503))
    assert client.health().healthy is False


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls", [c for c in all_error_classes() if c.__module__.startswith("parallax_docker.errors.")]
)
def test_every_error_code_maps_back_to_its_class(cls: type[ParallaxError]) -> None:
    client, _ = client_for(ok(error_json(cls.code), cls.http_status))
    with pytest.raises(cls) as caught:
        client.get("agent-1")
    assert type(caught.value) is cls


def test_codes_map_into_the_4xx_and_5xx_branches() -> None:
    client, _ = client_for(ok(error_json("LIMIT_ABOVE_HOST"), 422))
    with pytest.raises(RequestError) as caught:
        client.get("agent-1")
    assert isinstance(caught.value, ValidationError)
    client, _ = client_for(ok(error_json("RESOURCE_LIMIT"), 507))
    with pytest.raises(ServerError) as server:
        client.get("agent-1")
    assert isinstance(server.value, ResourceLimitError)


def test_error_keeps_message_and_resolution() -> None:
    client, _ = client_for(ok(error_json("CONFLICT", "name taken", "pick another"), 409))
    with pytest.raises(ConflictError) as caught:
        client.get("agent-1")
    assert caught.value.message == "name taken"
    assert caught.value.resolution == "pick another"


def test_unknown_code_is_the_base_error_keeping_the_code() -> None:
    client, _ = client_for(ok(error_json("BRAND_NEW"), 418))
    with pytest.raises(ParallaxError) as caught:
        client.get("agent-1")
    assert type(caught.value) is ParallaxError
    assert code_of(caught.value) == "BRAND_NEW"


def test_a_class_path_in_the_body_is_never_imported() -> None:
    body = {**error_json("subprocess.Popen"), "class": "subprocess.Popen", "type": "os.system"}
    client, _ = client_for(ok(body, 500))
    with pytest.raises(ParallaxError) as caught:
        client.get("agent-1")
    assert type(caught.value) is ParallaxError
    assert code_of(caught.value) == "subprocess.Popen"


def test_error_body_that_is_not_the_apis_is_bad_response() -> None:
    client, _ = client_for(lambda _: httpx.Response(502, text="<html>bad gateway</html>"))
    with pytest.raises(BadResponseError):
        client.get("agent-1")


def test_success_that_does_not_match_the_model_is_bad_response() -> None:
    client, _ = client_for(ok({"not": "a handle"}))
    with pytest.raises(BadResponseError):
        client.get("agent-1")


def test_refused_connection_is_service_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client, _ = client_for(refuse)
    with pytest.raises(ServiceUnreachableError) as caught:
        client.get("agent-1")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_timeout_is_request_timeout() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client, _ = client_for(slow)
    with pytest.raises(RequestTimeoutError):
        client.get("agent-1")


def test_client_errors_are_not_in_the_server_code_table() -> None:
    client, _ = client_for(ok(error_json("SERVICE_UNREACHABLE"), 503))
    with pytest.raises(ParallaxError) as caught:
        client.get("agent-1")
    assert type(caught.value) is ParallaxError


# -- the asyncio client ------------------------------------------------------------------------


def async_client_for(answer: Handler, **kwargs: Any) -> tuple[AsyncClient, Recorder]:
    recorder = Recorder(answer)
    kwargs.setdefault("environ", {})
    client = AsyncClient("http://svc:3200", transport=httpx.MockTransport(recorder), **kwargs)
    return client, recorder


async def test_async_spawn_returns_the_handle_and_sends_the_token() -> None:
    client, rec = async_client_for(ok(handle_json("agent-9"), 201), token="t")
    async with client:
        handle = await client.spawn(name="h", type="custom")
    assert handle.id == "agent-9"
    assert rec.last.headers["authorization"] == "Bearer t"


async def test_async_errors_map_to_the_same_classes() -> None:
    client, _ = async_client_for(ok(error_json("AGENT_NOT_FOUND"), 404))
    async with client:
        with pytest.raises(AgentNotFoundError):
            await client.get("ghost")


async def test_async_stream_logs_yields_lines() -> None:
    client, _ = async_client_for(lambda _: httpx.Response(200, text="x\ny\n"))
    async with client:
        lines = [line async for line in client.stream_logs("agent-1", tail=1)]
    assert lines == ["x", "y"]
