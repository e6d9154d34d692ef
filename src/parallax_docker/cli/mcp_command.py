"""``parallax-docker mcp``: the runtime's tools for an MCP client, over stdio (docs/mcp.md).

An MCP client (Claude Desktop, Claude Code, ...) starts this command and talks MCP on its stdin
and stdout; the tools call the service at ``--url`` with ``--token`` like every other command.
Nothing but MCP is ever written to stdout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import typer

from parallax_docker.cli.connection import connection_of
from parallax_docker.client import AsyncClient
from parallax_docker.mcp_server.tools import build_server


async def _serve(url: str | None, token: str | None) -> None:
    async with AsyncClient(url, token=token, timeout_s=600) as client:

        @asynccontextmanager
        async def shared() -> AsyncIterator[AsyncClient]:
            yield client

        await build_server(shared).run_stdio_async()


def mcp(ctx: typer.Context) -> None:
    """Serve the runtime as MCP tools on stdin/stdout (spawn, list, send, logs, files, diff,
    stop), for Claude Desktop, Claude Code or any MCP client."""
    connection = connection_of(ctx)
    try:
        asyncio.run(_serve(connection.url, connection.token))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def register(app: typer.Typer) -> None:
    app.command()(mcp)
