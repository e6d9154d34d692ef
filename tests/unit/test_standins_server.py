"""The stand-ins' script, record and control API, and how intents become each CLI's tools."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.polling import poll
from tests.support.standins.client import ControlError, Tenant, health
from tests.support.standins.script import Reply
from tests.support.standins.server import StandinServer, running
from tests.support.standins.tools import NoToolError, Offer, plan_call

TOOLS = [{"name": "Bash", "input_schema": {"properties": {"command": {}}}}]


@pytest.fixture(scope="module")
def server() -> Iterator[StandinServer]:
    with running() as serving:
        yield serving


def tenant_of(server: StandinServer) -> Tenant:
    return Tenant(f"http://127.0.0.1:{server.server_address[1]}")


def ask(tenant: Tenant, tools: bool = True, **body: Any) -> httpx.Response:
    payload = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **body}
    if tools:
        payload["tools"] = TOOLS
    return httpx.post(
        f"{tenant.base_url}/v1/messages", json=payload, headers={"x-api-key": tenant.key}
    )


def text_of(response: httpx.Response) -> str:
    return str(response.json()["content"][0]["text"])


def test_replies_are_taken_in_order_per_api_key(server: StandinServer) -> None:
    one, two = tenant_of(server), tenant_of(server)
    one.answer("first")
    one.answer("second")
    two.answer("other tenant")
    assert text_of(ask(one)) == "first"
    assert text_of(ask(two)) == "other tenant"
    assert text_of(ask(one)) == "second"
    # Nothing left: a default answer, and the call is still recorded.
    assert "nothing scripted" in text_of(ask(one))
    assert [r["reply"]["text"] for r in one.requests()][:2] == ["first", "second"]
    assert len(one.requests()) == 3 and len(two.requests()) == 1


def test_side_calls_get_a_default_answer_and_leave_the_script(server: StandinServer) -> None:
    tenant = tenant_of(server)
    tenant.answer("for the main call")
    side = ask(tenant, tools=False)
    assert text_of(side) == "ok"
    assert text_of(ask(tenant)) == "for the main call"
    recorded = tenant.requests()
    assert [r["main"] for r in recorded] == [False, True]
    assert tenant.requests(main_only=True)[0]["transcript"] == ["hi"]


def test_a_repeated_error_stays_until_reset(server: StandinServer) -> None:
    tenant = tenant_of(server)
    tenant.fail("500")
    assert [ask(tenant).status_code for _ in range(3)] == [500, 500, 500]
    tenant.reset()
    assert tenant.requests() == []
    tenant.answer("recovered")
    assert text_of(ask(tenant)) == "recovered"


def test_garbage_is_not_json_and_drop_closes_without_an_answer(server: StandinServer) -> None:
    tenant = tenant_of(server)
    tenant.queue(Reply(kind="error", error="garbage"), Reply(kind="error", error="drop"))
    garbage = ask(tenant)
    assert garbage.status_code == 200
    with pytest.raises(ValueError):
        json.loads(garbage.content)
    with pytest.raises(httpx.RemoteProtocolError):
        ask(tenant)


def test_a_hanging_call_answers_nothing_until_its_client_leaves(server: StandinServer) -> None:
    tenant = tenant_of(server)
    tenant.queue(Reply(kind="error", error="hang"))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{tenant.base_url}/v1/messages",
            json={"tools": TOOLS, "messages": []},
            headers={"x-api-key": tenant.key},
            timeout=httpx.Timeout(5, read=0.5),
        )
    # The handler notices the closed connection and lets its thread go.
    poll(lambda: _handler_threads(), lambda n: n == 0, timeout_s=5)


def test_a_hanging_call_gives_up_when_its_tenant_is_reset(server: StandinServer) -> None:
    tenant = tenant_of(server)
    tenant.queue(Reply(kind="error", error="hang"))
    port = server.server_address[1]
    body = json.dumps({"tools": TOOLS, "messages": []}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            + f"x-api-key: {tenant.key}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        poll(tenant.requests, lambda r: len(r) == 1, timeout_s=5)
        started = time.monotonic()
        tenant.reset()
        assert sock.recv(100) == b""  # closed, unanswered
        assert time.monotonic() - started < 3


def _handler_threads() -> int:
    return sum(1 for t in threading.enumerate() if "process_request_thread" in t.name)


def test_an_invalid_reply_is_refused_and_nothing_is_queued(server: StandinServer) -> None:
    tenant = tenant_of(server)
    for bad in ({"kind": "dance"}, {"kind": "shell"}, {"kind": "error", "error": "404"}, {"x": 1}):
        with pytest.raises(ControlError, match="400"):
            tenant.queue(bad)
    assert tenant.pending() == []


def test_unknown_paths_are_404_and_recorded(server: StandinServer) -> None:
    tenant = tenant_of(server)
    response = httpx.get(f"{tenant.base_url}/v9/nothing", headers={"x-api-key": tenant.key})
    assert response.status_code == 404
    assert [r["protocol"] for r in tenant.requests()] == ["unknown"]
    assert health(tenant.base_url)


def test_a_gzip_request_body_is_read() -> None:
    import gzip

    with running() as serving:
        tenant = tenant_of(serving)
        tenant.answer("unzipped")
        body = gzip.compress(json.dumps({"tools": TOOLS, "messages": []}).encode())
        response = httpx.post(
            f"{tenant.base_url}/v1/messages",
            content=body,
            headers={"x-api-key": tenant.key, "content-encoding": "gzip"},
        )
        assert text_of(response) == "unzipped"


# -- intents in each CLI's tools ------------------------------------------------------------


def offer(name: str, *params: str, kind: str = "function", ns: str | None = None) -> Offer:
    return Offer(name, kind, ns, {"properties": {p: {"type": "string"} for p in params}})


def test_shell_and_write_use_claudes_tools() -> None:
    offers = [offer("Bash", "command", "description"), offer("Write", "file_path", "content")]
    shell = plan_call(Reply(kind="shell", command="ls"), offers)
    assert (shell.name, shell.arguments["command"]) == ("Bash", "ls")
    write = plan_call(Reply(kind="write", path="/w/a", content="A"), offers)
    assert (write.name, write.arguments) == ("Write", {"file_path": "/w/a", "content": "A"})


def test_shell_and_write_use_geminis_tools() -> None:
    offers = [offer("run_shell_command", "command"), offer("write_file", "file_path", "content")]
    assert plan_call(Reply(kind="shell", command="ls"), offers).name == "run_shell_command"
    assert plan_call(Reply(kind="write", path="a", content="b"), offers).name == "write_file"


def test_codex_code_mode_runs_nested_tools_from_javascript() -> None:
    offers = [offer("exec", kind="custom", ns="functions")]
    shell = plan_call(Reply(kind="shell", command="echo 'q' \"x\""), offers)
    assert (shell.kind, shell.namespace) == ("custom", "functions")
    assert 'await tools.exec_command({"cmd": "echo \'q\' \\"x\\""})' in shell.input
    write = plan_call(Reply(kind="write", path="/w/n.txt", content="one\ntwo"), offers)
    assert "tools.apply_patch" in write.input
    assert "*** Add File: /w/n.txt\\n+one\\n+two\\n" in write.input


def test_a_write_falls_back_to_the_shell_and_nothing_offered_is_an_error() -> None:
    call = plan_call(
        Reply(kind="write", path="/w/it's", content="a'b"), [offer("shell", "command")]
    )
    assert call.arguments["command"] == "printf %s 'a'\\''b' > '/w/it'\\''s'"
    with pytest.raises(NoToolError, match="offered: none"):
        plan_call(Reply(kind="shell", command="ls"), [])
