"""``Client``: the blocking Python client of the parallax-docker API."""

from __future__ import annotations

import builtins
import json
from collections.abc import Generator, Iterable, Mapping
from types import TracebackType
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosedOK, InvalidStatus, InvalidURI, WebSocketException
from websockets.sync.client import connect

from parallax_docker.client import calls
from parallax_docker.client.errors import (
    BadResponseError,
    ServiceUnreachableError,
    error_from_body,
    map_transport_errors,
)
from parallax_docker.client.frames import EventFrame, SendResult
from parallax_docker.models import (
    AgentHandle,
    AgentListResponse,
    GcReport,
    HealthResponse,
    LogsResponse,
    MetricsResponse,
    SpawnRequest,
)


class Client:
    """Talks to one service. Use as a context manager, or call ``close()``.

    ``url`` defaults to ``PARALLAX_URL`` then ``http://127.0.0.1:3200``; ``token`` to
    ``PARALLAX_API_TOKEN``. ``transport`` is handed to httpx (tests pass ``MockTransport``).
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
        self._token = calls.resolve_token(token, environ)
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
    ) -> SendResult:
        """Give the agent a message; with ``expect_response`` wait for its answer."""
        call = calls.send(agent_id, message, expect_response, timeout_ms)
        timeout = calls.send_timeout(self._timeout_s, expect_response, timeout_ms)
        with map_transport_errors(self.url):
            response = self._http.request(call.method, call.path, json=call.json, timeout=timeout)
        return calls.model_of(response, SendResult)

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

    def events(self, agent_id: str | None = None) -> Generator[EventFrame, None, None]:
        """Live events over the WebSocket (``/ws``, or ``/ws/events?agentId=`` for one agent).

        Iterate until the service closes the stream; close the iterator to leave early.
        """
        if agent_id is None:
            url = calls.websocket_url(self.url, "/ws")
        else:
            url = calls.websocket_url(self.url, "/ws/events", {"agentId": agent_id})
        try:
            with connect(
                url,
                additional_headers=calls.auth_headers(self._token),
                open_timeout=self._timeout_s,
                proxy=None,
            ) as ws:
                try:
                    for message in ws:
                        yield _frame(message)
                except ConnectionClosedOK:
                    return
        except InvalidStatus as exc:
            raise _handshake_error(exc) from exc
        except (OSError, InvalidURI, WebSocketException) as exc:
            raise ServiceUnreachableError(
                f"event stream from {self.url} failed: {type(exc).__name__}"
            ) from exc


def _frame(message: str | bytes) -> EventFrame:
    try:
        return EventFrame.model_validate(json.loads(message))
    except ValueError:
        raise BadResponseError("the service sent an event frame that is not JSON") from None


def _handshake_error(exc: InvalidStatus) -> Exception:
    """The WebSocket upgrade was refused: read the API's error body from the answer."""
    status = exc.response.status_code
    try:
        body = json.loads(exc.response.body or b"")
    except ValueError:
        body = None
    return error_from_body(body, status)
