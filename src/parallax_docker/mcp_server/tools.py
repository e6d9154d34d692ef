"""The runtime as MCP tools, with the official ``mcp`` SDK: spawn, list, send, logs, files,
diff, stop. Claude Desktop, Claude Code or any MCP client can run a fleet with them.

Every tool speaks to the service through the Python client (``AsyncClient``), so the rules,
limits and errors are the API's own: ``parallax-docker mcp`` (stdio) points it at the service's
URL; ``/mcp`` (streamable HTTP, api/app.py) at the service itself, in process. A refused call
comes back as a tool error ``CODE: message (hint: resolution)``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from parallax_docker import __version__
from parallax_docker.client import AsyncClient
from parallax_docker.errors import ParallaxError

ClientFactory = Callable[[], AbstractAsyncContextManager[AsyncClient]]
# What read_file returns at most: a model reads it whole.
READ_MAX_BYTES = 1024 * 1024
INSTRUCTIONS = """Runs CLI AI coding agents (Claude Code, Codex, Gemini, Aider, custom commands)
in isolated Docker containers. spawn an agent, send it a task (the answer comes back when the
turn ends), read and write files in its workspace (/workspace, or ~ for its home), see what it
changed with diff, and stop it when done."""


def _dump(model: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def build_server(open_client: ClientFactory, name: str = "parallax-docker") -> MCPServer:
    """The MCP server; each tool call opens a client with ``open_client``."""
    server = MCPServer(name, version=__version__, instructions=INSTRUCTIONS)

    async def call(action: Callable[[AsyncClient], Awaitable[Any]]) -> Any:
        try:
            async with open_client() as client:
                return await action(client)
        except ParallaxError as exc:
            raise ToolError(f"{exc.code}: {exc.message} (hint: {exc.resolution})") from None

    @server.tool(description="Spawn an agent and wait until it is ready; returns its handle.")
    async def spawn(
        name: Annotated[str, Field(description="A name, unique among the agents")],
        type: Annotated[
            Literal["claude", "codex", "gemini", "aider", "custom"],
            Field(description="Which CLI runs each turn (custom: the image's own command)"),
        ] = "custom",
        image: Annotated[str | None, Field(description="Image (default: the type's)")] = None,
        command: Annotated[list[str] | None, Field(description="The container's command")] = None,
        env: Annotated[
            dict[str, str] | None, Field(description="Environment (kept secret, like keys)")
        ] = None,
        workdir: str | None = None,
        memory: Annotated[str | None, Field(description="e.g. 512m")] = None,
        cpu: Annotated[float | None, Field(description="Cores, e.g. 0.5")] = None,
        network: Annotated[str | None, Field(description="Network, internal or none")] = None,
        volumes: list[str] | None = None,
        labels: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {"name": name, "type": type}
        given = {
            "image": image,
            "command": command,
            "env": env,
            "workdir": workdir,
            "network": network,
            "volumes": volumes,
            "labels": labels,
        }
        fields.update({key: value for key, value in given.items() if value is not None})
        resources = {"memory": memory, "cpu": cpu}
        if any(value is not None for value in resources.values()):
            fields["resources"] = {k: v for k, v in resources.items() if v is not None}
        return _dump(await call(lambda client: client.spawn(**fields)))

    @server.tool(name="list", description="The agents, with their status.")
    async def list_agents(
        status: Annotated[list[str] | None, Field(description="Only these statuses")] = None,
    ) -> dict[str, Any]:
        agents = await call(lambda client: client.list(status=status))
        return {"agents": [_dump(agent) for agent in agents], "count": len(agents)}

    @server.tool(
        description="Send an agent a task and wait for the turn's result (its answer message)."
    )
    async def send(
        agent_id: str,
        message: str,
        timeout_ms: Annotated[
            int | None, Field(description="Bound on the turn (default: the service's)")
        ] = None,
    ) -> dict[str, Any]:
        answer = await call(
            lambda client: client.send(
                agent_id, message, expect_response=True, timeout_ms=timeout_ms
            )
        )
        return _dump(answer.response) if answer.response is not None else {"sent": True}

    @server.tool(description="The last lines an agent's container printed.")
    async def logs(agent_id: str, tail: int = 100) -> dict[str, Any]:
        lines = await call(lambda client: client.logs(agent_id, tail=tail))
        return {"logs": lines, "count": len(lines)}

    @server.tool(
        description="Read a file in an agent (up to 1 MiB): text, or base64 for binary files."
    )
    async def read_file(agent_id: str, path: str) -> dict[str, Any]:
        data = await call(lambda client: client.read_file(agent_id, path, max_bytes=READ_MAX_BYTES))
        try:
            return {"path": path, "text": data.decode("utf-8"), "size": len(data)}
        except UnicodeDecodeError:
            return {"path": path, "base64": base64.b64encode(data).decode(), "size": len(data)}

    @server.tool(
        description="Write a file in an agent (folders are made); content is text, or base64."
    )
    async def write_file(
        agent_id: str, path: str, content: str, encoding: Literal["text", "base64"] = "text"
    ) -> dict[str, Any]:
        try:
            data = base64.b64decode(content, validate=True) if encoding == "base64" else None
        except (binascii.Error, ValueError):
            raise ToolError("VALIDATION_ERROR: content is not valid base64") from None
        body = data if data is not None else content.encode("utf-8")
        return _dump(await call(lambda client: client.upload(agent_id, path, body)))

    @server.tool(description="List a folder in an agent: names, types, sizes, times.")
    async def list_files(agent_id: str, path: str = "/workspace") -> dict[str, Any]:
        return _dump(await call(lambda client: client.list_files(agent_id, path)))

    @server.tool(
        description="What the agent changed in its workspace since it was spawned: a unified "
        "diff and its commits in a git repository, else added/modified/removed files."
    )
    async def diff(agent_id: str) -> dict[str, Any]:
        return _dump(await call(lambda client: client.diff(agent_id)))

    @server.tool(description="Stop and remove an agent.")
    async def stop(agent_id: str, force: bool = False) -> dict[str, Any]:
        await call(lambda client: client.stop(agent_id, force=force))
        return {"stopped": agent_id}

    return server
