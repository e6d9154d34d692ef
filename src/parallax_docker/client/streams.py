"""Event streams over the service's WebSocket (``/ws``, ``/ws/events?agentId=``).

``EventStream`` (blocking) connects when it is made, so that nothing published after
``client.events()`` returns is missed; ``AsyncEventStream`` connects on ``async with`` (or at the
first frame). Both iterate ``EventFrame``s until the service closes the stream, and map a refused
upgrade (a bad token, an unknown route) back to the project's error classes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from contextlib import ExitStack
from types import TracebackType
from typing import Self

from websockets.asyncio.client import ClientConnection as AsyncConnection
from websockets.asyncio.client import connect as connect_async
from websockets.exceptions import (
    ConnectionClosedOK,
    InvalidStatus,
    InvalidURI,
    WebSocketException,
)
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as connect_sync

from parallax_docker.client.errors import (
    BadResponseError,
    RequestTimeoutError,
    ServiceUnreachableError,
    error_from_body,
)
from parallax_docker.client.frames import EventFrame
from parallax_docker.errors import ParallaxError


def frame_of(message: str | bytes) -> EventFrame:
    try:
        return EventFrame.model_validate(json.loads(message))
    except ValueError:
        raise BadResponseError("the service sent an event frame that is not JSON") from None


def stream_error(exc: Exception, url: str) -> ParallaxError:
    """A WebSocket failure as a project error; a refused upgrade by the API's error body."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        try:
            body = json.loads(exc.response.body or b"")
        except ValueError:
            body = None
        return error_from_body(body, status)
    if isinstance(exc, TimeoutError):
        return RequestTimeoutError(f"no event from {url} in time")
    return ServiceUnreachableError(f"event stream from {url} failed: {type(exc).__name__}")


_FAILURES = (OSError, InvalidURI, WebSocketException, TimeoutError)


class EventStream:
    """Blocking: ``for frame in stream``; ``receive(timeout_s)`` for one frame with a bound."""

    def __init__(self, url: str, headers: Mapping[str, str], open_timeout_s: float) -> None:
        self.url = url
        self._exit = ExitStack()
        try:
            self._ws: ClientConnection = self._exit.enter_context(
                connect_sync(
                    url, additional_headers=dict(headers), open_timeout=open_timeout_s, proxy=None
                )
            )
        except _FAILURES as exc:
            raise stream_error(exc, url) from exc

    def receive(self, timeout_s: float | None = None) -> EventFrame:
        """The next frame; StopIteration once the service has closed the stream."""
        try:
            return frame_of(self._ws.recv(timeout=timeout_s))
        except ConnectionClosedOK:
            raise StopIteration from None
        except _FAILURES as exc:
            raise stream_error(exc, self.url) from exc

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> EventFrame:
        return self.receive()

    def close(self) -> None:
        self._exit.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncEventStream:
    """``async with client.events() as stream: async for frame in stream``."""

    def __init__(self, url: str, headers: Mapping[str, str], open_timeout_s: float) -> None:
        self.url = url
        self._headers = dict(headers)
        self._open_timeout_s = open_timeout_s
        self._ws: AsyncConnection | None = None

    async def connect(self) -> Self:
        if self._ws is None:
            try:
                self._ws = await connect_async(
                    self.url,
                    additional_headers=self._headers,
                    open_timeout=self._open_timeout_s,
                    proxy=None,
                )
            except _FAILURES as exc:
                raise stream_error(exc, self.url) from exc
        return self

    async def receive(self, timeout_s: float | None = None) -> EventFrame:
        """The next frame; StopAsyncIteration once the service has closed the stream."""
        await self.connect()
        assert self._ws is not None
        try:
            async with asyncio.timeout(timeout_s):
                return frame_of(await self._ws.recv())
        except ConnectionClosedOK:
            raise StopAsyncIteration from None
        except _FAILURES as exc:
            raise stream_error(exc, self.url) from exc

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> EventFrame:
        return await self.receive()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def __aenter__(self) -> Self:
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
