"""``Client``: the blocking Python client of the parallax-docker API."""

from __future__ import annotations

import builtins
from collections.abc import Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import IO, Any

import httpx

from parallax_docker.client import calls, file_calls, thread_calls
from parallax_docker.client.errors import map_transport_errors
from parallax_docker.client.streams import EventStream
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


class Client:
    """Talks to one service. Use as a context manager, or call ``close()``.

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
        transport: httpx.BaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.url = calls.resolve_url(url, environ)
        self._token = calls.resolve_token(token, environ, self.url)
        self._timeout_s = timeout_s
        self._http = httpx.Client(
            base_url=self.url,
            headers=calls.auth_headers(self._token),
            timeout=timeout_s,
            transport=transport,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, call: calls.Call) -> httpx.Response:
        with map_transport_errors(self.url):
            return self._http.request(call.method, call.path, params=call.query, json=call.json)

    # -- agents -----------------------------------------------------------------------------

    def spawn(self, request: SpawnRequest | None = None, /, **fields: Any) -> AgentHandle:
        """Spawn an agent and return its handle once it is ready (``POST /agents``)."""
        return calls.model_of(self._call(calls.spawn(request, fields)), AgentHandle)

    def list(
        self,
        *,
        status: str | Iterable[str] | None = None,
        type: str | Iterable[str] | None = None,
        role: str | Iterable[str] | None = None,
    ) -> builtins.list[AgentHandle]:
        """Agents, optionally filtered (each filter takes one value or several)."""
        response = self._call(calls.list_agents(status, type, role))
        return calls.model_of(response, AgentListResponse).agents

    def get(self, agent_id: str) -> AgentHandle:
        return calls.model_of(self._call(calls.get(agent_id)), AgentHandle)

    def stop(self, agent_id: str, *, force: bool = False, timeout_ms: int | None = None) -> None:
        """Stop (SIGTERM, then SIGKILL after ``timeout_ms``) and remove the agent."""
        calls.check(self._call(calls.stop(agent_id, force, timeout_ms)))

    def restart(self, agent_id: str) -> AgentHandle:
        return calls.model_of(self._call(calls.restart(agent_id)), AgentHandle)

    def logs(
        self,
        agent_id: str,
        *,
        tail: int | None = None,
        since: str | float | None = None,
        timestamps: bool = False,
    ) -> builtins.list[str]:
        response = self._call(calls.logs(agent_id, tail, since, timestamps))
        return calls.model_of(response, LogsResponse).logs

    def stream_logs(
        self,
        agent_id: str,
        *,
        tail: int | None = None,
        since: str | float | None = None,
        timestamps: bool = False,
    ) -> Generator[str, None, None]:
        """Log lines as they come, until the agent stops or the iterator is closed."""
        call = calls.logs(agent_id, tail, since, timestamps, follow=True)
        timeout = httpx.Timeout(self._timeout_s, read=None)
        with (
            map_transport_errors(self.url),
            self._http.stream(call.method, call.path, params=call.query, timeout=timeout) as r,
        ):
            if not r.is_success:
                r.read()
                calls.check(r)
            yield from r.iter_lines()

    def metrics(self, agent_id: str) -> MetricsResponse:
        return calls.model_of(self._call(calls.metrics(agent_id)), MetricsResponse)

    def send(
        self,
        agent_id: str,
        message: str,
        *,
        expect_response: bool = False,
        timeout_ms: int | None = None,
    ) -> SendResponse:
        """Give the agent a message; with ``expect_response`` wait for its answer."""
        call = calls.send(agent_id, message, expect_response, timeout_ms)
        timeout = calls.send_timeout(self._timeout_s, expect_response, timeout_ms)
        with map_transport_errors(self.url):
            response = self._http.request(call.method, call.path, json=call.json, timeout=timeout)
        return calls.model_of(response, SendResponse)

    def messages(self, agent_id: str, *, limit: int | None = None) -> builtins.list[AgentMessage]:
        """The conversation with the agent, oldest first."""
        response = self._call(calls.messages(agent_id, limit))
        return calls.model_of(response, MessagesResponse).messages

    def remove_execution(self, execution_id: str) -> None:
        """Remove what the agents of one execution shared (its login-state volume)."""
        calls.check(self._call(calls.remove_execution(execution_id)))

    # -- files, diffs, previews -------------------------------------------------------------

    def upload(
        self,
        agent_id: str,
        path: str,
        data: bytes | IO[bytes] | Iterable[bytes],
        *,
        archive: bool = False,
    ) -> FileWriteResponse:
        """Write ``data`` as the file ``path`` in the agent, or (``archive``) unpack it, a tar,
        into the folder ``path``. ``data`` streams: bytes, a file object or chunks."""
        content = _chunks(data) if not isinstance(data, bytes) else data
        with map_transport_errors(self.url):
            response = self._http.put(
                file_calls.files_path(agent_id),
                params={"path": path},
                content=content,
                headers=file_calls.upload_headers(archive),
                timeout=httpx.Timeout(self._timeout_s, write=None, read=None),
            )
        return calls.model_of(response, FileWriteResponse)

    @contextmanager
    def download(
        self, agent_id: str, path: str, *, max_bytes: int | None = None
    ) -> Iterator[tuple[file_calls.Download, Iterator[bytes]]]:
        """``with client.download(id, path) as (found, chunks)``: a file's bytes, or a folder's
        contents as a tar (``found.kind == "dir"``), as they come; DownloadTooLargeError rather
        than more than ``max_bytes``."""
        call = file_calls.download(agent_id, path, max_bytes)
        timeout = httpx.Timeout(self._timeout_s, read=None)
        with (
            map_transport_errors(self.url),
            self._http.stream("GET", call.path, params=call.query, timeout=timeout) as r,
        ):
            if not r.is_success:
                r.read()
                calls.check(r)
            found = file_calls.Download(
                r.headers.get("x-parallax-kind", "file"), r.headers.get("x-parallax-path", path)
            )
            yield found, r.iter_raw(file_calls.DOWNLOAD_CHUNK)

    def read_file(self, agent_id: str, path: str, *, max_bytes: int | None = None) -> bytes:
        """A (small) file's bytes."""
        with self.download(agent_id, path, max_bytes=max_bytes) as (_found, chunks):
            return b"".join(chunks)

    def list_files(
        self, agent_id: str, path: str = "", *, limit: int | None = None
    ) -> FileListResponse:
        response = self._call(file_calls.list_files(agent_id, path, limit))
        return calls.model_of(response, FileListResponse)

    def remove_file(self, agent_id: str, path: str, *, recursive: bool = False) -> None:
        calls.check(self._call(file_calls.remove(agent_id, path, recursive)))

    def diff(self, agent_id: str) -> DiffResponse:
        """What the agent changed in its workspace since it was spawned."""
        return calls.model_of(self._call(file_calls.diff(agent_id)), DiffResponse)

    def open_preview(self, agent_id: str, port: int) -> str:
        """A browser link (a full URL) to ``port`` of the agent; it carries no API token."""
        answer = calls.model_of(
            self._call(file_calls.open_preview(agent_id, port)), PreviewResponse
        )
        return self.url + answer.path

    # -- threads ----------------------------------------------------------------------------

    def spawn_thread(
        self, request: SpawnThreadRequest | None = None, /, **fields: Any
    ) -> ThreadHandle:
        """Spawn a thread (``POST /threads``): answered at once, its start follows as events."""
        response = self._call(thread_calls.spawn_thread(request, fields))
        return calls.model_of(response, ThreadHandle)

    def list_threads(
        self,
        *,
        execution_id: str | None = None,
        role: str | None = None,
        status: str | Iterable[str] | None = None,
        agent_type: str | Iterable[str] | None = None,
    ) -> builtins.list[ThreadHandle]:
        call = thread_calls.list_threads(execution_id, role, status, agent_type)
        return calls.model_of(self._call(call), ThreadListResponse).threads

    def get_thread(self, thread_id: str) -> ThreadHandle:
        return calls.model_of(self._call(thread_calls.get_thread(thread_id)), ThreadHandle)

    def stop_thread(
        self, thread_id: str, *, force: bool = False, timeout_ms: int | None = None
    ) -> None:
        calls.check(self._call(thread_calls.stop_thread(thread_id, force, timeout_ms)))

    def send_to_thread(
        self,
        thread_id: str,
        message: str | None = None,
        *,
        raw: str | None = None,
        keys: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue a message for the thread's next turn, or interrupt its turn (Ctrl-C)."""
        call = thread_calls.send_to_thread(thread_id, message, raw, keys, metadata)
        calls.check(self._call(call))

    def thread_events(
        self, thread_id: str, *, limit: int | None = None
    ) -> builtins.list[ThreadEventBody]:
        """The thread's last events, oldest first (live ones: ``events()``, ``thread_event``)."""
        response = self._call(thread_calls.thread_events(thread_id, limit))
        return calls.model_of(response, ThreadEventsResponse).events

    # -- runtime ----------------------------------------------------------------------------

    def health(self) -> HealthResponse:
        """The service's health; an unreachable engine is ``healthy=False``, not an error."""
        response = self._call(calls.health())
        if response.status_code == 503:
            try:
                return HealthResponse.model_validate(response.json())
            except ValueError:
                pass
        return calls.model_of(response, HealthResponse)

    def gc(self, *, dry_run: bool = True) -> GcReport:
        """Report (and unless ``dry_run``, remove) leftover containers, networks, volumes."""
        return calls.model_of(self._call(calls.gc(dry_run)), GcReport)

    def prometheus(self) -> str:
        """The service's ``/metrics`` page (Prometheus text format)."""
        response = self._call(calls.Call("GET", "/metrics"))
        return calls.check(response).text

    def events(self, agent_id: str | None = None, *, history: int = 0) -> EventStream:
        """Live events over the WebSocket (``/ws``, or ``/ws/events?agentId=`` for one agent).

        Connected when this returns: iterate it (``for frame in ...``) until the service closes
        the stream; ``receive(timeout_s)`` bounds one wait; close it (or use ``with``) to leave.
        ``history`` first replays that many recent events.
        """
        return EventStream(
            calls.events_url(self.url, agent_id, history),
            calls.auth_headers(self._token),
            self._timeout_s,
        )


def _chunks(data: IO[bytes] | Iterable[bytes]) -> Iterator[bytes]:
    read = getattr(data, "read", None)
    if read is None:
        yield from data
        return
    while chunk := read(file_calls.DOWNLOAD_CHUNK):
        yield chunk
