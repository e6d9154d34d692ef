"""Processes in a running container (``docker exec``): run to the end, or stream as they go.

The exec instance is created through the Engine API; starting it takes the hijacked connection
(engine/client.py ``hijack``) so that stdin can be half-closed: the process reads the whole
message, sees end-of-file, and its output keeps flowing back on the same connection. Everything
runs on the event loop; no stream holds a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

from parallax_docker.backends.base import ExecExit, ExecOutput, ExecResult, ExecSpec
from parallax_docker.backends.docker.engine import Engine
from parallax_docker.backends.docker.engine.streams import STDERR, STDOUT, read_frame
from parallax_docker.backends.docker.engine.tls_stream import RawWriter
from parallax_docker.backends.docker.errors import engine_call

# Bytes handed to the socket between two drains while stdin is written.
_STDIN_CHUNK = 64 * 1024
# What ``run`` keeps of a process's output.
_OUTPUT_LIMIT = 64 * 1024
# After the output ends the engine may need a moment to record the exit code.
_EXIT_POLL_S = 0.01
_EXIT_WAIT_S = 5.0


async def create(engine: Engine, container_id: str, spec: ExecSpec, *, tty: bool) -> str:
    async with engine_call("exec", "create", container_id[:12]):
        return await engine.execs.create(
            container_id,
            spec.argv,
            stdin=spec.stdin is not None or tty,
            tty=tty,
            env=spec.env,
            user=spec.user,
            workdir=spec.workdir,
        )


async def start(
    engine: Engine, exec_id: str, *, tty: bool
) -> tuple[asyncio.StreamReader, RawWriter]:
    async with engine_call("exec", "start", exec_id[:12]):
        return await engine.execs.start(exec_id, tty=tty)


async def exit_code(engine: Engine, exec_id: str, wait_s: float = _EXIT_WAIT_S) -> int | None:
    """The exec's exit code; the engine records it a moment after the output ends (None:
    still running after ``wait_s``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    delay = _EXIT_POLL_S
    while True:
        async with engine_call("exec", "inspect", exec_id[:12]):
            info = await engine.execs.inspect(exec_id)
        code = info.get("ExitCode")
        if not info.get("Running") and code is not None:
            return int(code)
        if loop.time() >= deadline:
            return None
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)


async def _write_stdin(writer: RawWriter, data: bytes) -> None:
    """Write all of ``data``, then half-close: the process reads end-of-file."""
    view = memoryview(data)
    with contextlib.suppress(ConnectionError):
        for begin in range(0, len(view), _STDIN_CHUNK):
            writer.write(view[begin : begin + _STDIN_CHUNK])
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


async def stream_exec(
    engine: Engine, container_id: str, spec: ExecSpec
) -> AsyncGenerator[ExecOutput | ExecExit, None]:
    """The Backend's ``stream_exec`` on the Docker engine (see backends/base.py)."""
    exec_id = await create(engine, container_id, spec, tty=False)
    reader, writer = await start(engine, exec_id, tty=False)
    feeder: asyncio.Task[None] | None = None
    if spec.stdin is not None:
        feeder = asyncio.create_task(_write_stdin(writer, spec.stdin), name="parallax-exec-stdin")
    try:
        async with engine_call("exec", "start", exec_id[:12]):
            while (frame := await read_frame(reader)) is not None:
                stream, payload = frame
                if payload and stream == STDOUT:
                    yield ExecOutput("stdout", payload)
                elif payload and stream == STDERR:
                    yield ExecOutput("stderr", payload)
        if feeder is not None:
            # The process ended; whatever it did not read is of no use any more.
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
        code = await exit_code(engine, exec_id)
        yield ExecExit(-1 if code is None else code)
    finally:
        if feeder is not None and not feeder.done():
            feeder.cancel()
        writer.close()


async def run(engine: Engine, container_id: str, spec: ExecSpec, timeout_s: float) -> ExecResult:
    """The Backend's ``exec``: run ``spec`` to its end within ``timeout_s``."""
    output = bytearray()
    code = -1
    async with engine_call("exec", "start", container_id[:12]), asyncio.timeout(timeout_s):
        stream = stream_exec(engine, container_id, spec)
        try:
            async for item in stream:
                if isinstance(item, ExecExit):
                    code = item.exit_code
                elif len(output) < _OUTPUT_LIMIT:
                    output.extend(item.data[: _OUTPUT_LIMIT - len(output)])
        finally:
            await stream.aclose()
    return ExecResult(exit_code=code, output=bytes(output))
