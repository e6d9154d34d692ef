"""Running host commands (debootstrap, tar, umount) from async code without blocking the loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from parallax_docker.errors import EngineError

_CHUNK = 256 * 1024


async def stream_lines(argv: Sequence[str]) -> AsyncIterator[str]:
    """Run ``argv``, yielding its combined output line by line; raise if it exits non-zero."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    try:
        async for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                yield line
        code = await proc.wait()
    finally:
        await _reap(proc)
    if code != 0:
        raise EngineError(f"{argv[0]} exited with status {code}")


async def stream_bytes(argv: Sequence[str]) -> AsyncIterator[bytes]:
    """Run ``argv``, yielding its stdout in chunks; raise if it exits non-zero."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        while chunk := await proc.stdout.read(_CHUNK):
            yield chunk
        errors = await proc.stderr.read()
        code = await proc.wait()
    finally:
        await _reap(proc)
    if code != 0:
        detail = errors.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise EngineError(f"{argv[0]} exited with status {code}: {detail[0]}")


async def run(argv: Sequence[str]) -> None:
    async for _ in stream_lines(argv):
        pass


async def _reap(proc: asyncio.subprocess.Process) -> None:
    # A consumer that stops early (an error, Ctrl-C) must not leave the child running.
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
