"""MCP sessions through the official ``mcp`` client: over /mcp (streamable HTTP, with the API
token) and over ``parallax-docker mcp`` (stdio). Each spawns an agent, sends it a task, reads
the file the task wrote, sees it in the diff, and stops the agent."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent

from tests.integration.conftest import SESSION
from tests.support.engine import Engine
from tests.support.polling import poll
from tests.support.server import ServiceProcess

TOKEN = "mcp-test-token-0123456789abcdef"
TOOLS = {"spawn", "list", "send", "logs", "read_file", "write_file", "list_files", "diff", "stop"}


@pytest.fixture(scope="module")
def guarded(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory, service_env: dict[str, str]
) -> Iterator[ServiceProcess]:
    folder = tmp_path_factory.mktemp("mcp")
    env = {
        **service_env,
        "PARALLAX_INSTANCE": service_env["PARALLAX_INSTANCE"] + "-mcp",
        "PARALLAX_STATE_DIR": str(folder / "state"),
        "PARALLAX_API_TOKEN": TOKEN,
    }
    process = ServiceProcess(env, folder / "service.log").start(wait_healthy=False)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    poll(
        lambda: httpx.get(process.url + "/health", headers=auth, timeout=5),
        lambda r: r.status_code == 200 and r.json()["runtime"]["synced"],
        timeout_s=60,
    )
    yield process
    process.stop()
    for container in engine.containers(f"test-session={SESSION}"):
        if container["Labels"].get("parallax.instance") == env["PARALLAX_INSTANCE"]:
            engine.remove_container(container["Id"])


def text_of(result: Any) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        value: dict[str, Any] = result.structured_content
        return value.get("result", value) if set(value) == {"result"} else value
    loaded: dict[str, Any] = json.loads(text_of(result))
    return loaded


async def session(client: Client, agent_image: str) -> dict[str, Any]:
    """The whole session an MCP client would run; what it saw."""
    seen: dict[str, Any] = {}
    seen["tools"] = {tool.name for tool in (await client.list_tools()).tools}
    name = f"mcp-{uuid.uuid4().hex[:8]}"
    handle = structured(
        await client.call_tool(
            "spawn",
            {
                "name": name,
                "image": agent_image,
                "env": {"PARALLAX_CLI_BIN": "sh"},
                "memory": "128m",
                "labels": {"test-session": SESSION},
            },
        )
    )
    agent_id = handle["id"]
    seen["status"] = handle["status"]
    try:
        answer = structured(
            await client.call_tool(
                "send",
                {
                    "agent_id": agent_id,
                    "message": "echo 'made by the task' > report.txt; echo done",
                },
            )
        )
        seen["answer"] = answer
        seen["file"] = structured(
            await client.call_tool("read_file", {"agent_id": agent_id, "path": "report.txt"})
        )
        written = structured(
            await client.call_tool(
                "write_file",
                {"agent_id": agent_id, "path": "~/in/note.md", "content": "# from MCP\n"},
            )
        )
        seen["written"] = written
        seen["listing"] = structured(
            await client.call_tool("list_files", {"agent_id": agent_id, "path": "~/in"})
        )
        seen["diff"] = structured(await client.call_tool("diff", {"agent_id": agent_id}))
        seen["listed"] = structured(await client.call_tool("list", {}))
        refused = await client.call_tool(
            "read_file", {"agent_id": agent_id, "path": "/run/parallax/env"}
        )
        seen["refused"] = (refused.is_error, text_of(refused))
        seen["logs"] = structured(await client.call_tool("logs", {"agent_id": agent_id}))
    finally:
        seen["stopped"] = structured(await client.call_tool("stop", {"agent_id": agent_id}))
    seen["id"] = agent_id
    return seen


def check(seen: dict[str, Any]) -> None:
    assert seen["tools"] == TOOLS
    assert seen["status"] == "ready"
    assert seen["answer"]["type"] == "response"
    assert seen["answer"]["content"].strip() == "done"
    assert seen["file"]["text"] == "made by the task\n"
    assert seen["written"]["path"] == "~/in/note.md"
    assert [e["name"] for e in seen["listing"]["entries"]] == ["note.md"]
    assert {f["path"]: f["change"] for f in seen["diff"]["files"]} == {"report.txt": "added"}
    assert seen["id"] in [a["id"] for a in seen["listed"]["agents"]]
    is_error, text = seen["refused"]
    assert is_error and "PATH_FORBIDDEN" in text
    assert seen["stopped"] == {"stopped": seen["id"]}


def test_an_mcp_session_over_http_spawns_sends_and_reads_a_file(
    guarded: ServiceProcess, agent_image: Callable[[str], str]
) -> None:
    image = agent_image("echo")

    async def run() -> dict[str, Any]:
        # The SDK's own HTTP client package; the MCP client sends its headers on every request.
        http = httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=httpx2.Timeout(600)
        )
        async with (
            http,
            Client(streamable_http_client(guarded.url + "/mcp", http_client=http)) as client,
        ):
            return await session(client, image)

    check(asyncio.run(run()))
    # Without the token, /mcp is refused like every route.
    assert httpx.post(guarded.url + "/mcp", json={}).status_code == 401
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}) as api:
        assert api.get(guarded.url + "/agents").json()["count"] == 0


def test_an_mcp_session_over_stdio_spawns_sends_and_reads_a_file(
    guarded: ServiceProcess, agent_image: Callable[[str], str], tmp_path: Path
) -> None:
    image = agent_image("echo")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "parallax_docker.cli.main", "--url", guarded.url, "mcp"],
        env={"PARALLAX_API_TOKEN": TOKEN},
        cwd=str(tmp_path),
    )

    async def run() -> dict[str, Any]:
        async with Client(params) as client:
            return await session(client, image)

    check(asyncio.run(run()))
