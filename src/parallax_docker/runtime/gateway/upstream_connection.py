"""One kept-alive HTTP/1.1 connection to a provider, as an asyncio protocol: the answer's head
and body from httptools' parser, handed to the one request waiting on it, with reading paused
while too much of a body waits to be read.
"""

from __future__ import annotations

import asyncio
from collections import deque

import httptools

# Bytes of an answer held here before the connection stops reading (the agent reads slowly).
_HIGH_WATER = 256 * 1024


class UpstreamError(Exception):
    """The provider could not be reached, or its connection failed mid-answer."""


class Connection(asyncio.Protocol):
    """One connection to an origin; one answer on it at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        # What must live as long as the connection (a proxy tunnel's stream).
        self.tunnel: object = None
        self._parser = httptools.HttpResponseParser(self)
        self._chunks: deque[bytes] = deque()
        self._held = 0
        self._wake: asyncio.Future[None] | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self.lost = False
        self._error: Exception | None = None
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self._head_done = False
        self._done = False
        # Neither a length nor chunked: the body ends when the connection does.
        self._until_close = False
        self._keep_alive = False
        self.any_byte = False
        # The provider was given up on (no answer in time): such a request is not sent again.
        self.timed_out = False

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.any_byte = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"the provider's answer could not be read: {exc}"))
            self.close()
        if self._held > _HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._head_done and self._until_close and not self._done:
            self._done = True
        elif not self._done:
            self._fail(UpstreamError("the provider closed the connection"))
        self._writable.set()
        self._notify()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- httptools callbacks -----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            # An interim answer (100 Continue): the real one follows.
            self.headers = []
            return
        self.status = status
        framing = {name.lower() for name, _ in self.headers}
        self._until_close = not framing & {b"content-length", b"transfer-encoding"}
        self._head_done = True
        self._notify()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._held += len(body)
        self._notify()

    def on_message_complete(self) -> None:
        if self._head_done:
            self._done = True
            # Asked here: the parser forgets the message's framing once it has ended.
            self._keep_alive = self._parser.should_keep_alive()
            self._notify()

    # -- the request's side ------------------------------------------------------------------

    def _fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        self._notify()

    def _notify(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _wait(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        self._wake = loop.create_future()
        timer = loop.call_later(timeout_s, self._timed_out)
        try:
            await self._wake
        finally:
            timer.cancel()
            self._wake = None

    def _timed_out(self) -> None:
        self.timed_out = True
        self._fail(UpstreamError("the provider did not answer in time"))
        self.close()

    async def send(self, data: bytes) -> None:
        assert self.transport is not None
        if self.lost:
            raise UpstreamError("the provider closed the connection")
        self.transport.write(data)
        await self._writable.wait()

    async def head(self, timeout_s: float) -> None:
        while not self._head_done:
            if self._error is not None:
                raise self._error
            await self._wait(timeout_s)

    async def next_chunk(self, timeout_s: float) -> bytes | None:
        """The next piece of the body; None at its end."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._held -= len(chunk)
                if self._held <= _HIGH_WATER // 2 and self.transport is not None:
                    self.transport.resume_reading()
                return chunk
            if self._done:
                return None
            if self._error is not None:
                raise self._error
            await self._wait(timeout_s)

    @property
    def reusable(self) -> bool:
        return self._done and self._keep_alive and not self.lost

    def headless(self) -> None:
        """The answer to a HEAD: it has no body, whatever its headers say, and the parser
        cannot be told so; the connection ends with it."""
        self._done = True
        self.lost = True

    def reset(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self.status, self.headers = 0, []
        self._head_done = self._done = self._until_close = self.any_byte = False
        self.timed_out = False
        self._keep_alive = False
        self._chunks.clear()
        self._held = 0
        self._error = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
