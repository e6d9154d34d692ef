"""``docker exec`` with streams: turns (argv, stdin in, output out) and interactive terminals.

The exec instance is created and inspected through aiodocker; starting it takes the Engine API's
hijacked connection (``POST /exec/{id}/start`` upgraded to a raw TCP stream), opened here on the
engine's Unix socket so that stdin can be half-closed: the process reads the whole message, sees
end-of-file, and its output keeps flowing back on the same connection. Everything runs on the
event loop; no stream holds a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiodocker

from parallax_docker.backends.base import ExecExit, ExecOutput, ExecSpec
from parallax_docker.backends.docker.errors import engine_call
from parallax_docker.errors import AgentStateError

log = logging.getLogger(__name__)

# Bytes handed to the socket between two drains while stdin is written.
_STDIN_CHUNK = 64 * 1024
_READ_CHUNK = 64 * 1024
_HEAD_LIMIT = 64 * 1024
# After the output ends the engine may need a moment to record the exit code.
_EXIT_POLL_S = 0.01
_EXIT_WAIT_S = 5.0
_STREAMS = {1: "stdout", 2: "stderr"}


async def _create(docker: aiodocker.Docker, container_id: str, spec: ExecSpec, *, tty: bool) -> Any:
    async with engine_call("container", container_id[:12]):
        container = docker.containers.container(container_id)
        try:
            return await container.exec(
                list(spec.argv),
                stdout=True,
                stderr=True,
                stdin=spec.stdin is not None or tty,
                tty=tty,
                user=spec.user or "",
                environment=dict(spec.env) or None,
                workdir=spec.workdir,
            )
        except aiodocker.DockerError as exc:
            if exc.status == 409:
                raise _not_running() from exc
            raise


def _not_running() -> AgentStateError:
    return AgentStateError(
        "the agent's container is not running",
        resolution="Restart the agent (POST /agents/{id}/restart) or spawn a new one.",
    )


async def _hijack(
    socket_path: str, exec_id: str, *, tty: bool, connect_timeout_s: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``POST /exec/{id}/start`` and take over the connection once the engine upgrades it."""
    body = json.dumps({"Detach": False, "Tty": tty}).encode()
    head = (
        f"POST /exec/{exec_id}/start HTTP/1.1\r\n"
        "Host: docker\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: Upgrade\r\n"
        "Upgrade: tcp\r\n\r\n"
    ).encode()
    async with engine_call("exec", exec_id[:12]):
        async with asyncio.timeout(connect_timeout_s):
            reader, writer = await asyncio.open_unix_connection(socket_path, limit=_HEAD_LIMIT)
        try:
            writer.write(head + body)
            await writer.drain()
            async with asyncio.timeout(connect_timeout_s * 10):
                raw = await reader.readuntil(b"\r\n\r\n")
                status, headers = _parse_head(raw)
                if status not in (101, 200):
                    # An error answer instead of the stream: read its JSON message.
                    payload = await _read_body(reader, headers)
                    if status == 409:
                        raise _not_running()
                    raise aiodocker.DockerError(status, _error_message(payload))
        except BaseException:
            writer.close()
            raise
    return reader, writer


def _parse_head(raw: bytes) -> tuple[int, dict[str, str]]:
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise aiodocker.DockerError(502, "malformed answer to exec start")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            if size == 0:
                return bytes(out)
            out.extend(await reader.readexactly(size))
            await reader.readexactly(2)
    return await reader.read(_HEAD_LIMIT)


def _error_message(payload: bytes) -> str:
    try:
        data = json.loads(payload or b"{}")
    except ValueError:
        return ""
    return str(data.get("message", "")) if isinstance(data, dict) else ""


async def _exit_code(execution: Any) -> int:
    """The exec's exit code; the engine records it a moment after the output ends."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _EXIT_WAIT_S
    delay = _EXIT_POLL_S
    while True:
        async with engine_call("exec"):
            info = await execution.inspect()
        code = info.get("ExitCode")
        if not info.get("Running") and code is not None:
            return int(code)
        if loop.time() >= deadline:
            return -1
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)


async def _write_stdin(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write all of ``data``, then half-close: the process reads end-of-file."""
    view = memoryview(data)
    with contextlib.suppress(ConnectionError):
        for start in range(0, len(view), _STDIN_CHUNK):
            writer.write(view[start : start + _STDIN_CHUNK])
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


async def stream_exec(
    docker: aiodocker.Docker,
    socket_path: str,
    container_id: str,
    spec: ExecSpec,
    *,
    connect_timeout_s: float,
) -> AsyncIterator[ExecOutput | ExecExit]:
    """The Backend's ``stream_exec`` on the Docker engine (see backends/base.py)."""
    execution = await _create(docker, container_id, spec, tty=False)
    reader, writer = await _hijack(
        socket_path, execution.id, tty=False, connect_timeout_s=connect_timeout_s
    )
    feeder: asyncio.Task[None] | None = None
    if spec.stdin is not None:
        feeder = asyncio.create_task(_write_stdin(writer, spec.stdin), name="parallax-exec-stdin")
    try:
        async with engine_call("exec", execution.id[:12]):
            while True:
                try:
                    header = await reader.readexactly(8)
                except asyncio.IncompleteReadError:
                    break
                size = int.from_bytes(header[4:8], "big")
                try:
                    payload = await reader.readexactly(size)
                except asyncio.IncompleteReadError as exc:
                    payload = exc.partial
                stream = _STREAMS.get(header[0])
                if stream is not None and payload:
                    yield ExecOutput(stream, payload)  # type: ignore[arg-type]
        if feeder is not None:
            # The process ended; whatever it did not read is of no use any more.
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
        yield ExecExit(await _exit_code(execution))
    finally:
        if feeder is not None and not feeder.done():
            feeder.cancel()
        writer.close()


class DockerTerminal:
    """A TerminalSession on a TTY exec: raw bytes both ways, resize through the Engine API."""

    def __init__(
        self, execution: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._execution = execution
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()

    async def read(self) -> bytes:
        try:
            return await self._reader.read(_READ_CHUNK)
        except ConnectionError:
            return b""

    async def write(self, data: bytes) -> None:
        async with self._lock:
            try:
                self._writer.write(data)
                await self._writer.drain()
            except ConnectionError:
                return

    async def resize(self, cols: int, rows: int) -> None:
        async with engine_call("exec", self._execution.id[:12]):
            await self._execution.resize(h=rows, w=cols)

    async def exit_code(self) -> int | None:
        async with engine_call("exec", self._execution.id[:12]):
            info = await self._execution.inspect()
        code = info.get("ExitCode")
        return None if info.get("Running") or code is None else int(code)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()


async def open_terminal(
    docker: aiodocker.Docker,
    socket_path: str,
    container_id: str,
    spec: ExecSpec,
    cols: int,
    rows: int,
    *,
    connect_timeout_s: float,
) -> DockerTerminal:
    """The Backend's ``open_terminal`` on the Docker engine (see backends/base.py)."""
    execution = await _create(docker, container_id, spec, tty=True)
    reader, writer = await _hijack(
        socket_path, execution.id, tty=True, connect_timeout_s=connect_timeout_s
    )
    terminal = DockerTerminal(execution, reader, writer)
    try:
        # The engine sizes a TTY exec only once it runs (API 1.41 has no size at start).
        await terminal.resize(cols, rows)
    except Exception as exc:
        log.debug("could not size the terminal: %s", type(exc).__name__)
    return terminal
