"""Interactive terminals (the Terminals capability): a TTY exec, raw bytes both ways."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from parallax_docker.backends.base import ExecSpec
from parallax_docker.backends.docker import processes
from parallax_docker.backends.docker.engine import Engine
from parallax_docker.backends.docker.engine.tls_stream import RawWriter
from parallax_docker.backends.docker.errors import engine_call

log = logging.getLogger(__name__)

_READ_CHUNK = 64 * 1024


class DockerTerminal:
    """A TerminalSession on a TTY exec: resized through the Engine API."""

    def __init__(
        self,
        engine: Engine,
        exec_id: str,
        reader: asyncio.StreamReader,
        writer: RawWriter,
    ) -> None:
        self._engine = engine
        self._exec_id = exec_id
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
        async with engine_call("exec", "resize", self._exec_id[:12]):
            await self._engine.execs.resize(self._exec_id, cols, rows)

    async def exit_code(self) -> int | None:
        return await processes.exit_code(self._engine, self._exec_id, wait_s=0)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()


class DockerTerminals:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def open_terminal(
        self, container_id: str, spec: ExecSpec, cols: int, rows: int
    ) -> DockerTerminal:
        exec_id = await processes.create(self._engine, container_id, spec, tty=True)
        reader, writer = await processes.start(self._engine, exec_id, tty=True)
        terminal = DockerTerminal(self._engine, exec_id, reader, writer)
        try:
            # The engine sizes a TTY exec only once it runs (API 1.41 has no size at start).
            await terminal.resize(cols, rows)
        except Exception as exc:
            log.debug("could not size the terminal: %s", type(exc).__name__)
        return terminal
