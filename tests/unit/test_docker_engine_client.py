"""The Engine API client (backends/docker/engine/) against a small fake engine on a Unix socket.

The fake is an aiohttp web server on a UnixSite for plain requests and streams, and a raw
asyncio Unix server for the exec start's hijacked connection; both run in the test's loop.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from parallax_docker.backends.docker.engine import Engine, EngineAPIError, EngineClient
from parallax_docker.backends.docker.engine.client import negotiate
from parallax_docker.backends.docker.engine.streams import demux, json_lines, read_frame
from parallax_docker.backends.docker.errors import engine_call
from parallax_docker.errors import SocketError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    # A short path: a Unix socket's path is limited to about a hundred bytes.
    folder = Path(tempfile.mkdtemp(prefix="pfe-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


class FakeEngine:
    """Routes by method and path; records every request it was sent."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.seen: list[tuple[str, str, str]] = []
        self.version = {"ApiVersion": "1.41", "MinAPIVersion": "1.12"}

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.method, request.path, request.query_string))
        if request.path == "/version":
            return web.json_response(self.version)
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            return web.json_response({"message": "page not found"}, status=404)
        return await handler(request)


@pytest.fixture
async def fake(socket_dir: Path) -> AsyncIterator[tuple[FakeEngine, str]]:
    engine = FakeEngine()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", engine.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    path = str(socket_dir / "engine.sock")
    await web.UnixSite(runner, path).start()
    yield engine, path
    await runner.cleanup()


@pytest.fixture
async def client(fake: tuple[FakeEngine, str]) -> AsyncIterator[EngineClient]:
    made = EngineClient(fake[1], request_timeout_s=0.5, connect_timeout_s=0.5)
    yield made
    await made.close()


def json_answer(body: object, status: int = 200) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=status)

    return handler


# -- versions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "minimum", "chosen"),
    [
        ("1.41", "1.12", "1.41"),
        ("1.47", "1.24", "1.45"),
        ("1.50", "1.46", "1.46"),
        ("1.9", "", "1.9"),
    ],
)
def test_negotiate_speaks_the_newest_version_both_know(
    server: str, minimum: str, chosen: str
) -> None:
    assert negotiate(server, minimum, "1.45") == chosen


async def test_the_version_is_asked_once_and_every_path_carries_it(
    fake: tuple[FakeEngine, str], client: EngineClient
) -> None:
    engine, _ = fake
    engine.route("GET", "/v1.41/containers/abc/json", json_answer({"Id": "abc"}))
    for _ in range(3):
        assert await client.json("GET", "containers/abc/json") == {"Id": "abc"}
    assert [path for _, path, _ in engine.seen].count("/version") == 1
    assert [path for _, path, _ in engine.seen][1:] == ["/v1.41/containers/abc/json"] * 3


async def test_an_empty_version_speaks_unversioned_paths(fake: tuple[FakeEngine, str]) -> None:
    engine, path = fake
    engine.route("GET", "/_ping", json_answer("OK"))
    client = EngineClient(path, api_version="")
    try:
        assert await client.json("GET", "_ping") == "OK"
    finally:
        await client.close()
    assert engine.seen == [("GET", "/_ping", "")]


# -- answers ------------------------------------------------------------------------------------


async def test_an_answer_outside_2xx_raises_with_the_status_and_message(
    fake: tuple[FakeEngine, str], client: EngineClient
) -> None:
    fake[0].route(
        "DELETE", "/v1.41/volumes/v", json_answer({"message": "volume is in use"}, status=409)
    )
    with pytest.raises(EngineAPIError) as raised:
        await client.json("DELETE", "volumes/v")
    assert (raised.value.status, raised.value.message) == (409, "volume is in use")


async def test_304_is_not_taken_for_success_by_the_client(
    fake: tuple[FakeEngine, str], client: EngineClient
) -> None:
    async def not_modified(request: web.Request) -> web.StreamResponse:
        return web.Response(status=304)

    fake[0].route("POST", "/v1.41/containers/c/stop", not_modified)
    with pytest.raises(EngineAPIError) as raised:
        await Engine(client).containers.stop("c", 1)
    assert raised.value.status == 304


async def test_queries_and_json_bodies_reach_the_engine(
    fake: tuple[FakeEngine, str], client: EngineClient
) -> None:
    received: list[object] = []

    async def create(request: web.Request) -> web.StreamResponse:
        received.append((request.query.get("name"), await request.json()))
        return web.json_response({"Id": "new", "Warnings": []}, status=201)

    fake[0].route("POST", "/v1.41/containers/create", create)
    created = await Engine(client).containers.create("agent-1", {"Image": "x"})
    assert created == {"Id": "new", "Warnings": []}
    assert received == [("agent-1", {"Image": "x"})]


async def test_a_slow_answer_is_bounded_by_the_request_timeout(
    fake: tuple[FakeEngine, str], client: EngineClient
) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(1.5)
        return web.json_response({})

    fake[0].route("GET", "/v1.41/info", slow)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(SocketError, match="in time"):
        async with engine_call("engine", "inspect"):
            await client.json("GET", "info")
    assert loop.time() - began < 1.2


async def test_no_engine_on_the_socket_is_a_socket_error(socket_dir: Path) -> None:
    client = EngineClient(str(socket_dir / "absent.sock"), api_version="1.41")
    try:
        with pytest.raises(SocketError, match="cannot connect"):
            async with engine_call("engine", "inspect"):
                await client.json("GET", "info")
    finally:
        await client.close()


async def test_a_stream_outlives_the_request_timeout(
    fake: tuple[FakeEngine, str], client: EngineClient
) -> None:
    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for n in range(3):
            # Split one message across writes, and wait longer than a request may take.
            line = json.dumps({"Type": "container", "n": n}).encode() + b"\n"
            await response.write(line[:5])
            await asyncio.sleep(0.3)
            await response.write(line[5:])
        return response

    fake[0].route("GET", "/v1.41/events", events)
    got = [event async for event in Engine(client).events.stream('{"type":["container"]}')]
    assert [event["n"] for event in got] == [0, 1, 2]
    assert fake[0].seen[-1][2] == 'filters={"type":["container"]}'


async def test_repeated_query_values_are_all_sent(
    fake: tuple[FakeEngine, str], client: EngineClient
) -> None:
    queries: list[list[str]] = []

    async def create(request: web.Request) -> web.StreamResponse:
        queries.append(request.query.getall("changes"))
        body = await request.read()
        return web.Response(text=json.dumps({"status": f"sha256:{len(body)}"}) + "\r\n")

    fake[0].route("POST", "/v1.41/images/create", create)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"abc"
        yield b"de"

    messages = await Engine(client).images.import_rootfs(
        chunks(), "repo", "tag", ("USER agent", 'CMD ["sh"]')
    )
    assert messages == [{"status": "sha256:5"}]
    assert queries == [["USER agent", 'CMD ["sh"]']]


# -- the hijacked exec connection -------------------------------------------------------------


RawAnswer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_engine(socket_dir: Path, answer: RawAnswer) -> AsyncIterator[EngineClient]:
    """A client of a raw engine that answers each connection with ``answer``."""
    path = str(socket_dir / "raw.sock")
    server = await asyncio.start_unix_server(answer, path)
    client = EngineClient(path, api_version="1.41")
    try:
        yield client
    finally:
        server.close()
        await client.close()


async def test_hijack_carries_stdin_in_and_frames_out(socket_dir: Path) -> None:
    heads: list[bytes] = []

    async def engine(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        heads.append(head)
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        stdin = await reader.read()  # up to the client's half-close
        for stream, payload in ((1, stdin.upper()), (2, b"err")):
            writer.write(bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload)
        await writer.drain()
        writer.close()

    async with raw_engine(socket_dir, engine) as client:
        reader, writer = await client.hijack("exec/e1/start", {"Detach": False, "Tty": False})
        writer.write(b"hello")
        writer.write_eof()
        frames = [await read_frame(reader), await read_frame(reader), await read_frame(reader)]
        writer.close()
    assert frames == [(1, b"HELLO"), (2, b"err"), None]
    assert heads[0].startswith(b"POST /v1.41/exec/e1/start HTTP/1.1\r\n")
    assert b"Upgrade: tcp" in heads[0]


async def test_hijack_refused_raises_the_engines_status(socket_dir: Path) -> None:
    async def engine(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b'{"message":"container abc is not running"}'
        writer.write(
            b"HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    async with raw_engine(socket_dir, engine) as client:
        with pytest.raises(EngineAPIError) as raised:
            await client.hijack("exec/e1/start", {})
    assert (raised.value.status, raised.value.message) == (409, "container abc is not running")


# -- stream formats -----------------------------------------------------------------------------


class Chunks:
    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks

    async def iter_any(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


async def test_json_lines_joins_split_messages_and_skips_blank_lines() -> None:
    source = Chunks(b'{"a": 1}\r\n\r\n{"b"', b': 2}\n{"c": 3}')
    assert [m async for m in json_lines(source)] == [{"a": 1}, {"b": 2}, {"c": 3}]


def test_demux_joins_the_payloads_of_framed_output() -> None:
    framed = b"\x01\x00\x00\x00\x00\x00\x00\x03one\x02\x00\x00\x00\x00\x00\x00\x03two"
    assert demux(framed) == b"onetwo"


def test_demux_leaves_raw_tty_output_as_it_is() -> None:
    assert demux(b"plain output from a tty\n") == b"plain output from a tty\n"
