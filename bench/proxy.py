"""A Unix-socket proxy in front of the engine that counts the HTTP requests passing through it.

It shows, from outside the service, how many engine calls a burst of API reads causes. Requests
are parsed only as far as needed to find where each one ends (request line, headers, a
Content-Length body); a connection the engine hijacks (exec, attach) is then just piped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections import Counter
from pathlib import Path


class CountingProxy:
    def __init__(self, path: Path, upstream: str = "/var/run/docker.sock") -> None:
        self.path = path
        self.upstream = upstream
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    def start(self) -> CountingProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)

    async def _start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._server = await asyncio.start_unix_server(self._handle, path=str(self.path))

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _count(self, head: bytes) -> None:
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, _, rest = line.partition(" ")
        path = rest.split(" ", 1)[0].split("?", 1)[0]
        # /v1.41/containers/<id>/json -> containers/*/json
        parts = [p for p in path.split("/") if p and not p.startswith("v1.")]
        if len(parts) >= 3 and parts[0] in ("containers", "exec", "networks", "images"):
            parts[1] = "*"
        with self._lock:
            self.counts[f"{method} /{'/'.join(parts)}"] += 1

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Client -> engine: count each request, pass the bytes on unchanged."""
        counting = True
        buffer = b""
        skip = 0  # body bytes of the current request still to come
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
                if not counting:
                    continue
                buffer += data
                while counting:
                    if skip:
                        taken = min(skip, len(buffer))
                        buffer = buffer[taken:]
                        skip -= taken
                        if skip:
                            break
                    end = buffer.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    head = buffer[:end]
                    buffer = buffer[end + 4 :]
                    self._count(head)
                    for header in head.split(b"\r\n")[1:]:
                        name, _, value = header.partition(b":")
                        key = name.strip().lower()
                        if key == b"content-length":
                            skip = int(value.strip() or 0)
                        elif key == b"transfer-encoding" or key == b"upgrade":
                            # Chunked uploads and hijacked streams: stop parsing this one.
                            counting = False
        with contextlib.suppress(Exception):
            writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self.upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._requests(reader, up_writer), self._pipe(up_reader, writer))
