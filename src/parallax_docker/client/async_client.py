"""``AsyncClient``: the asyncio Python client of the parallax-docker API.

The same methods as ``Client``, awaited; streams are async iterators.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Mapping
from types import TracebackType
from typing import Any

import httpx

from parallax_docker.client import calls, file_calls, thread_calls
from parallax_docker.client.errors import map_transport_errors
from parallax_docker.client.streams import AsyncEventStream
from parallax_docker.file_models import (
    DiffResponse,
    FileListResponse,
    FileWriteResponse,
    PreviewResponse,
)
from parallax_docker.models import (
    AgentHandle,
    AgentListResponse,
    AgentMessage,
    GcReport,
    HealthResponse,
    LogsResponse,
    MessagesResponse,
    MetricsResponse,
    SendResponse,
    SpawnRequest,
)
from parallax_docker.thread_models import (
    SpawnThreadRequest,
    ThreadEventBody,
    ThreadEventsResponse,
    ThreadHandle,
    ThreadListResponse,
)


class AsyncClient:
    """Talks to one service. Use as ``async with``, or ``await close()``.

    ``url`` defaults to ``PARALLAX_URL`` then ``http://127.0.0.1:3200``; ``token`` to
    ``PARALLAX_API_TOKEN``, then the local service's token file (token_file.py).
    ``transport`` is handed to httpx (tests pass ``MockTransport``).
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
        self._token = calls.resolve_token(token, environ, self.url)
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
    ) -> SendResponse:
        call = calls.send(agent_id, message, expect_response, timeout_ms)
        timeout = calls.send_timeout(self._timeout_s, expect_response, timeout_ms)
        with map_transport_errors(self.url):
            response = await self._http.request(
                call.method, call.path, json=call.json, timeout=timeout
            )
        return calls.model_of(response, SendResponse)

    async def messages(
        self, agent_id: str, *, limit: int | None = None
    ) -> builtins.list[AgentMessage]:
        """The conversation with the agent, oldest first."""
        response = await self._call(calls.messages(agent_id, limit))
        return calls.model_of(response, MessagesResponse).messages

    async def remove_execution(self, execution_id: str) -> None:
        """Remove what the agents of one execution shared (its login-state volume)."""
        calls.check(await self._call(calls.remove_execution(execution_id)))

    # -- files, diffs, previews -------------------------------------------------------------

    async def upload(
        self,
        agent_id: str,
        path: str,
        data: bytes | AsyncIterable[bytes],
        *,
        archive: bool = False,
    ) -> FileWriteResponse:
        """Write ``data`` (bytes, or chunks as they come) as the file ``path`` in the agent, or
        (``archive``) unpack it, a tar, into the folder ``path``."""
        with map_transport_errors(self.url):
            response = await self._http.put(
                file_calls.files_path(agent_id),
                params={"path": path},
                content=data,
                headers=file_calls.upload_headers(archive),
                timeout=httpx.Timeout(self._timeout_s, write=None, read=None),
            )
        return calls.model_of(response, FileWriteResponse)

    async def stream_download(
        self, agent_id: str, path: str, *, max_bytes: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        """A file's bytes, or a folder's contents as a tar, as they come; DownloadTooLargeError
        rather than more than ``max_bytes``."""
        call = file_calls.download(agent_id, path, max_bytes)
        timeout = httpx.Timeout(self._timeout_s, read=None)
        with map_transport_errors(self.url):
            async with self._http.stream("GET", call.path, params=call.query, timeout=timeout) as r:
                if not r.is_success:
                    await r.aread()
                    calls.check(r)
                async for chunk in r.aiter_raw(file_calls.DOWNLOAD_CHUNK):
                    yield chunk

    async def read_file(self, agent_id: str, path: str, *, max_bytes: int | None = None) -> bytes:
        """A (small) file's bytes."""
        chunks = self.stream_download(agent_id, path, max_bytes=max_bytes)
        return b"".join([chunk async for chunk in chunks])

    async def list_files(
        self, agent_id: str, path: str = "", *, limit: int | None = None
    ) -> FileListResponse:
        response = await self._call(file_calls.list_files(agent_id, path, limit))
        return calls.model_of(response, FileListResponse)

    async def remove_file(self, agent_id: str, path: str, *, recursive: bool = False) -> None:
        calls.check(await self._call(file_calls.remove(agent_id, path, recursive)))

    async def diff(self, agent_id: str) -> DiffResponse:
        """What the agent changed in its workspace since it was spawned."""
        return calls.model_of(await self._call(file_calls.diff(agent_id)), DiffResponse)

    async def open_preview(self, agent_id: str, port: int) -> str:
        """A browser link (a full URL) to ``port`` of the agent; it carries no API token."""
        response = await self._call(file_calls.open_preview(agent_id, port))
        return self.url + calls.model_of(response, PreviewResponse).path

    # -- threads ----------------------------------------------------------------------------

    async def spawn_thread(
        self, request: SpawnThreadRequest | None = None, /, **fields: Any
    ) -> ThreadHandle:
        response = await self._call(thread_calls.spawn_thread(request, fields))
        return calls.model_of(response, ThreadHandle)

    async def list_threads(
        self,
        *,
        execution_id: str | None = None,
        role: str | None = None,
        status: str | Iterable[str] | None = None,
        agent_type: str | Iterable[str] | None = None,
    ) -> builtins.list[ThreadHandle]:
        call = thread_calls.list_threads(execution_id, role, status, agent_type)
        return calls.model_of(await self._call(call), ThreadListResponse).threads

    async def get_thread(self, thread_id: str) -> ThreadHandle:
        response = await self._call(thread_calls.get_thread(thread_id))
        return calls.model_of(response, ThreadHandle)

    async def stop_thread(
        self, thread_id: str, *, force: bool = False, timeout_ms: int | None = None
    ) -> None:
        calls.check(await self._call(thread_calls.stop_thread(thread_id, force, timeout_ms)))

    async def send_to_thread(
        self,
        thread_id: str,
        message: str | None = None,
        *,
        raw: str | None = None,
        keys: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        call = thread_calls.send_to_thread(thread_id, message, raw, keys, metadata)
        calls.check(await self._call(call))

    async def thread_events(
        self, thread_id: str, *, limit: int | None = None
    ) -> builtins.list[ThreadEventBody]:
        response = await self._call(thread_calls.thread_events(thread_id, limit))
        return calls.model_of(response, ThreadEventsResponse).events

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

    def events(self, agent_id: str | None = None, *, history: int = 0) -> AsyncEventStream:
        """Live events over the WebSocket: ``async with client.events() as stream`` connects,
        then ``async for frame in stream`` until the service closes it. ``history`` first
        replays that many recent events."""
        return AsyncEventStream(
            calls.events_url(self.url, agent_id, history),
            calls.auth_headers(self._token),
            self._timeout_s,
        )
