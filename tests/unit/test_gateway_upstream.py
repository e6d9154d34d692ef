"""The gateway's HTTP/1.1 client against real local servers that answer as scripted: kept-alive
connections, each framing of an answer, a connection the provider closed while idle, and
failures that must end in UpstreamError rather than a hang."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from parallax_docker.runtime.gateway.upstream import Origin, UpstreamPool
from parallax_docker.runtime.gateway.upstream_connection import UpstreamError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
REQUEST = b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n"


class Server:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.closed_by_client = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> Origin:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return Origin.of(f"http://127.0.0.1:{port}")

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()


async def _request_head(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))
    return head


def _whole(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n" % (len(body), extra) + body


async def _answers(pool: UpstreamPool, origin: Origin, n: int) -> list[bytes]:
    """``n`` requests one after another, each answer (a 200) read whole and handed back."""
    bodies = []
    for _ in range(n):
        answer = await pool.request(origin, REQUEST, b"{}", headless=False)
        assert answer.status == 200
        bodies.append(await answer.read())
        answer.close()
    return bodies


@pytest.fixture
async def pool() -> AsyncIterator[UpstreamPool]:
    made = UpstreamPool(ssl.create_default_context(), read_timeout_s=5)
    yield made
    made.close()


async def test_answers_come_back_whole_on_one_kept_alive_connection(pool: UpstreamPool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for n in range(3):
            await _request_head(reader)
            writer.write(_whole(b'{"n": %d}' % n))

    server = Server(handler)
    async with server as origin:
        assert await _answers(pool, origin, 3) == [b'{"n": %d}' % n for n in range(3)]
    assert server.connections == 1


async def test_a_chunked_answer_arrives_decoded_piece_by_piece(pool: UpstreamPool) -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_head(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n6\r\ndata: \r\n"
        )
        await release.wait()
        writer.write(b"3\r\none\r\n0\r\n\r\n")
        await _request_head(reader)
        writer.write(_whole(b"again"))

    server = Server(handler)
    async with server as origin:
        answer = await pool.request(origin, REQUEST, b"{}", headless=False)
        assert answer.header(b"content-type") == "text/event-stream"
        pieces = answer.chunks()
        # The first piece is handed on before the rest of the answer exists.
        assert await anext(pieces) == b"data: "
        release.set()
        assert [piece async for piece in pieces] == [b"one"]
        answer.close()
        again = await pool.request(origin, REQUEST, b"{}", headless=False)
        assert await again.read() == b"again"
        again.close()
    assert server.connections == 1


async def test_an_answer_without_a_length_ends_with_its_connection(pool: UpstreamPool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")

    server = Server(handler)
    async with server as origin:
        assert await _answers(pool, origin, 2) == [b"until the end"] * 2
    # Not kept: the second request made a new connection.
    assert server.connections == 2


async def test_a_connection_closed_while_idle_is_replaced_without_an_error(
    pool: UpstreamPool,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_head(reader)
        writer.write(_whole(b"first"))
        # The provider drops a kept-alive connection right after answering.

    server = Server(handler)
    async with server as origin:
        assert await _answers(pool, origin, 2) == [b"first"] * 2
    assert server.connections == 2


async def test_a_head_answer_has_no_body_whatever_its_length_says(pool: UpstreamPool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n")
        await reader.read()

    async with Server(handler) as origin:
        head = b"HEAD /v1/models HTTP/1.1\r\nhost: x\r\n\r\n"
        answer = await asyncio.wait_for(pool.request(origin, head, b"", headless=True), 5)
        assert (answer.status, await answer.read()) == (200, b"")
        answer.close()


async def test_an_interim_answer_is_skipped(pool: UpstreamPool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_head(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + _whole(b"real", b"x-real: 1\r\n"))

    async with Server(handler) as origin:
        answer = await pool.request(origin, REQUEST, b"{}", headless=False)
        assert (answer.status, answer.header(b"x-real"), await answer.read()) == (200, "1", b"real")
        answer.close()


async def test_failures_end_in_an_upstream_error_not_a_hang() -> None:
    pool = UpstreamPool(ssl.create_default_context(), read_timeout_s=0.3, connect_timeout_s=2)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_head(reader)
        await asyncio.sleep(5)

    async def cut_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this")
        await writer.drain()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_head(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    try:
        async with Server(silent) as origin:
            with pytest.raises(UpstreamError, match="in time"):
                await pool.request(origin, REQUEST, b"{}", headless=False)
        async with Server(cut_short) as origin:
            answer = await pool.request(origin, REQUEST, b"{}", headless=False)
            with pytest.raises(UpstreamError, match="closed"):
                await answer.read()
            answer.close()
        async with Server(garbage) as origin:
            with pytest.raises(UpstreamError, match="could not be read"):
                await pool.request(origin, REQUEST, b"{}", headless=False)
        async with Server(silent) as origin:
            pass
        # Nobody listens there any more.
        with pytest.raises(UpstreamError, match="cannot connect"):
            await pool.request(origin, REQUEST, b"{}", headless=False)
    finally:
        pool.close()


async def test_a_large_answer_read_slowly_arrives_whole(pool: UpstreamPool) -> None:
    body = bytes(range(256)) * 8192  # 2 MiB, well past what is held before reading pauses

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_head(reader)
        writer.write(_whole(body))
        await writer.drain()

    async with Server(handler) as origin:
        answer = await pool.request(origin, REQUEST, b"{}", headless=False)
        received = bytearray()
        async for chunk in answer.chunks():
            received += chunk
            await asyncio.sleep(0)
        answer.close()
    assert bytes(received) == body


def test_origins_name_their_host_as_a_host_header_would() -> None:
    assert Origin.of("https://api.anthropic.com").host_header == "api.anthropic.com"
    assert Origin.of("http://127.0.0.1:8080/base/").base_path == "/base"
    assert Origin.of("http://[::1]:9000").host_header == "[::1]:9000"
    assert Origin.of("https://example.com:443/").port == 443


async def test_a_request_that_timed_out_on_a_kept_connection_is_not_sent_again() -> None:
    pool = UpstreamPool(ssl.create_default_context(), read_timeout_s=0.3)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_head(reader)
        writer.write(_whole(b"first"))
        await _request_head(reader)
        await asyncio.sleep(5)  # the second is never answered

    server = Server(handler)
    try:
        async with server as origin:
            assert await _answers(pool, origin, 1) == [b"first"]
            with pytest.raises(UpstreamError, match="in time"):
                await pool.request(origin, REQUEST, b"{}", headless=False)
    finally:
        pool.close()
    # A model call the provider may be working on is not made twice.
    assert server.connections == 1
