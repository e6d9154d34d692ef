"""Reading the engine's streamed bodies: JSON messages one per line, and multiplexed frames.

Events, builds, pulls and imports send one JSON object per line. Logs and exec output of a
container without a TTY arrive in frames: an 8-byte header (stream id, three zero bytes, the
payload's size, big-endian) and the payload.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, Protocol

# One JSON message larger than this is not something the engine sends; stop rather than grow.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
STDOUT = 1
STDERR = 2


class ChunkSource(Protocol):
    def iter_any(self) -> AsyncIterator[bytes]: ...


class ExactReader(Protocol):
    async def readexactly(self, n: int) -> bytes: ...


async def json_lines(content: ChunkSource) -> AsyncIterator[Any]:
    """Each JSON message of a newline-separated stream (blank lines skipped)."""
    pending = b""
    async for chunk in content.iter_any():
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)
        if len(pending) > MAX_MESSAGE_BYTES:
            raise ValueError("the engine sent an oversized message")
    if pending.strip():
        yield json.loads(pending)


async def read_frame(reader: ExactReader) -> tuple[int, bytes] | None:
    """The next (stream id, payload) frame; None at the end of the stream."""
    try:
        header = await reader.readexactly(8)
    except asyncio.IncompleteReadError:
        return None
    size = int.from_bytes(header[4:8], "big")
    try:
        return header[0], await reader.readexactly(size)
    except asyncio.IncompleteReadError as exc:
        return (header[0], exc.partial) if exc.partial else None


def demux(raw: bytes) -> bytes:
    """The payloads of a whole multiplexed body, joined; the body itself if it is not framed
    (a container with a TTY sends its output raw)."""
    out = bytearray()
    view = memoryview(raw)
    pos = 0
    while pos + 8 <= len(view):
        if view[pos] not in (0, STDOUT, STDERR) or any(view[pos + 1 : pos + 4]):
            return raw
        size = int.from_bytes(view[pos + 4 : pos + 8], "big")
        out.extend(view[pos + 8 : pos + 8 + size])
        pos += 8 + size
    return bytes(out)
