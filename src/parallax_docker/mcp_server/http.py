"""``/mcp``: the MCP tools over streamable HTTP, inside the service (pure ASGI entrance).

It sits inside the Host/Origin guard and the token check like every route, so an MCP client
sends ``Authorization: Bearer <token>``. The tools call the service's own API in process (an
``AsyncClient`` on an ASGI transport), with the service's token: whoever reached /mcp holds it
already. The SDK's own Host check is off (the guard did it). Sessions are stateless: nothing is
kept between requests, so a restarted service serves a client that was connected before.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from parallax_docker.client import AsyncClient
from parallax_docker.mcp_server.tools import build_server

PATH = "/mcp"
# The in-process client's base URL: a loopback Host, which the guard serves.
_SELF = "http://127.0.0.1"


class McpEndpoint:
    """The streamable-HTTP MCP endpoint; ``start()`` and ``stop()`` it with the app."""

    def __init__(self, token: str | None) -> None:
        self._token = token
        self._app: ASGIApp | None = None
        server = build_server(self._client)
        self._handler = server.streamable_http_app(
            streamable_http_path=PATH,
            stateless_http=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self._manager: StreamableHTTPSessionManager = server.session_manager
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def bind(self, app: ASGIApp) -> None:
        """The service's own app, which the tools call."""
        self._app = app

    async def start(self) -> None:
        """Run the SDK's session manager in a task of its own: its task group must be left by
        the task that entered it, whichever tasks start and stop the app."""
        self._stopping = asyncio.Event()
        running = asyncio.Event()

        async def hold() -> None:
            async with self._manager.run():
                running.set()
                await self._stopping.wait()

        self._task = asyncio.create_task(hold(), name="parallax-mcp-sessions")
        started = asyncio.create_task(running.wait())
        await asyncio.wait({self._task, started}, return_when=asyncio.FIRST_COMPLETED)
        if not running.is_set():
            started.cancel()
            await self._task  # raises what stopped it

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping.set()
            await self._task
            self._task = None

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[AsyncClient]:
        if self._app is None:
            raise RuntimeError("the MCP endpoint is not bound to the service")
        async with AsyncClient(
            _SELF,
            token=self._token,
            transport=httpx.ASGITransport(app=self._app),
            timeout_s=600,
            environ={},
        ) as client:
            yield client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._handler(scope, receive, send)


class McpEntrance:
    """Serves ``/mcp`` (and ``/mcp/``) with the endpoint; passes every other request on."""

    def __init__(self, app: ASGIApp, endpoint: McpEndpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in (PATH, PATH + "/"):
            await self.endpoint({**scope, "path": PATH, "raw_path": PATH.encode()}, receive, send)
            return
        await self.app(scope, receive, send)
