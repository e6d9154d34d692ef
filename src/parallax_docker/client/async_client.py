"""``AsyncClient``: the asyncio Python client of the parallax-docker API.

The same methods as ``Client``, awaited; streams are async iterators.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncGenerator, Iterable, Mapping
from types import TracebackType
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK, InvalidStatus, InvalidURI, WebSocketException

from parallax_docker.client import calls
from parallax_docker.client.errors import ServiceUnreachableError, map_transport_errors
from parallax_docker.client.frames import EventFrame, SendResult
from parallax_docker.client.sync import _frame, _handshake_error
from parallax_docker.models import (
    AgentHandle,
    AgentListResponse,
    GcReport,
    HealthResponse,
    LogsResponse,
    MetricsResponse,
    SpawnRequest,
)


class AsyncClient:
    """Talks to one service. Use as ``async with``, or ``await close()``.

    ``url`` defaults to ``PARALLAX_URL`` then ``http://127.0.0.1:3200``; ``token`` to
    ``PARALLAX_API_TOKEN``. ``transport`` is handed to httpx (tests pass ``MockTransport``).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        timeout_s: float = calls.DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.url = calls.resolve_url(url, environ)
        self._token = calls.resolve_token(token, environ)
        self._timeout_s = timeout_s
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers=calls.auth_headers(self._token),
            timeout=timeout_s,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, call: calls.Call) -> httpx.Response:
        with map_transport_errors(self.url):
            return await self._http.request(
                call.method, call.path, params=call.query, json=call.json
            )

    # -- agents -----------------------------------------------------------------------------

    async def spawn(self, request: SpawnRequest | None = None, /, **fields: Any) -> AgentHandle:
        """Spawn an agent and return its handle once it is ready (``POST /agents``)."""
        return calls.model_of(await self._call(calls.spawn(request, fields)), AgentHandle)

    async def list(
        self,
        *,
        status: str | Iterable[str] | None = None,
        type: str | Iterable[str] | None = None,
        role: str | Iterable[str] | None = None,
    ) -> builtins.list[AgentHandle]:
        response = await self._call(calls.list_agents(status, type, role))
        return calls.model_of(response, AgentListResponse).agents

    async def get(self, agent_id: str) -> AgentHandle:
        return calls.model_of(await self._call(calls.get(agent_id)), AgentHandle)

    async def stop(
        self, agent_id: str, *, force: bool = False, timeout_ms: int | None = None
    ) -> None:
        calls.check(await self._call(calls.stop(agent_id, force, timeout_ms)))

    async def restart(self, agent_id: str) -> AgentHandle:
        return calls.model_of(await self._call(calls.restart(agent_id)), AgentHandle)

    async def logs(
        self,
        agent_id: str,
        *,
        tail: int | None = None,
        since: str | float | None = None,
        timestamps: bool = False,
    ) -> builtins.list[str]:
        response = await self._call(calls.logs(agent_id, tail, since, timestamps))
        return calls.model_of(response, LogsResponse).logs

    async def stream_logs(
        self,
        agent_id: str,
        *,
        tail: int | None = None,
        since: str | float | None = None,
        timestamps: bool = False,
    ) -> AsyncGenerator[str, None]:
        """Log lines as they come, until the agent stops or the iterator is closed."""
        call = calls.logs(agent_id, tail, since, timestamps, follow=True)
        timeout = httpx.Timeout(self._timeout_s, read=None)
        with map_transport_errors(self.url):
            async with self._http.stream(
                call.method, call.path, params=call.query, timeout=timeout
            ) as r:
                if not r.is_success:
                    await r.aread()
                    calls.check(r)
                async for line in r.aiter_lines():
                    yield line

    async def metrics(self, agent_id: str) -> MetricsResponse:
        return calls.model_of(await self._call(calls.metrics(agent_id)), MetricsResponse)

    async def send(
        self,
        agent_id: str,
        message: str,
        *,
        expect_response: bool = False,
        timeout_ms: int | None = None,
    ) -> SendResult:
        call = calls.send(agent_id, message, expect_response, timeout_ms)
        timeout = calls.send_timeout(self._timeout_s, expect_response, timeout_ms)
        with map_transport_errors(self.url):
            response = await self._http.request(
                call.method, call.path, json=call.json, timeout=timeout
            )
        return calls.model_of(response, SendResult)

    # -- runtime ----------------------------------------------------------------------------

    async def health(self) -> HealthResponse:
        response = await self._call(calls.health())
        if response.status_code == 503:
            try:
                return HealthResponse.model_validate(response.json())
            except ValueError:
                pass
        return calls.model_of(response, HealthResponse)

    async def gc(self, *, dry_run: bool = True) -> GcReport:
        return calls.model_of(await self._call(calls.gc(dry_run)), GcReport)

    async def prometheus(self) -> str:
        response = await self._call(calls.Call("GET", "/metrics"))
        return calls.check(response).text

    async def events(self, agent_id: str | None = None) -> AsyncGenerator[EventFrame, None]:
        """Live events over the WebSocket; iterate until the service closes the stream."""
        if agent_id is None:
            url = calls.websocket_url(self.url, "/ws")
        else:
            url = calls.websocket_url(self.url, "/ws/events", {"agentId": agent_id})
        try:
            async with connect(
                url,
                additional_headers=calls.auth_headers(self._token),
                open_timeout=self._timeout_s,
                proxy=None,
            ) as ws:
                try:
                    async for message in ws:
                        yield _frame(message)
                except ConnectionClosedOK:
                    return
        except InvalidStatus as exc:
            raise _handshake_error(exc) from exc
        except (OSError, InvalidURI, WebSocketException) as exc:
            raise ServiceUnreachableError(
                f"event stream from {self.url} failed: {type(exc).__name__}"
            ) from exc
