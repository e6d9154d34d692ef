"""Files in an agent (the Files capability), through ``docker exec`` of a small shell helper.

The engine's archive API reads the container's own filesystem, not the tmpfs mounts and
volumes where an agent's workspace and home live, and it acts as root. So every operation runs
``parallax-files.sh`` (beside this module) in the agent, as the agent's own user: it resolves
each path there, links and all, and refuses what really lies outside /workspace and the home.
Bytes stream both ways over the exec's hijacked connection (stdin written with back-pressure,
stdout read frame by frame), so no file is ever held whole in the service's memory.

The helper answers with an exit code per kind of refusal (see the script's head), mapped here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from functools import cache
from importlib.resources import files as package_files
from typing import Literal

from parallax_docker.backends.base import ExecSpec
from parallax_docker.backends.capabilities import DirListing, FileEntry, FileStream
from parallax_docker.backends.docker import processes
from parallax_docker.backends.docker.engine import Engine
from parallax_docker.backends.docker.engine.streams import STDOUT, read_frame
from parallax_docker.backends.docker.engine.tls_stream import RawWriter
from parallax_docker.backends.docker.errors import engine_call
from parallax_docker.errors import (
    BadArchiveError,
    DirectoryNotEmptyError,
    DownloadTooLargeError,
    EngineError,
    FilePermissionError,
    FilesUnavailableError,
    FileTypeForbiddenError,
    ParallaxError,
    PathConflictError,
    PathForbiddenError,
    PathNotFoundError,
    WorkspaceFullError,
)

# Bytes handed to the socket between two drains while an upload is written.
_STDIN_CHUNK = 256 * 1024
# What is kept of the helper's messages, and of a listing.
_STDERR_LIMIT = 4096
_LISTING_LIMIT = 32 * 1024 * 1024
_HEADER_LIMIT = 4096
_KINDS: dict[str, Literal["file", "dir", "symlink", "other"]] = {
    "regular file": "file",
    "regular empty file": "file",
    "directory": "dir",
    "symbolic link": "symlink",
}


@cache
def script() -> str:
    return (package_files(__package__) / "parallax-files.sh").read_text()


def argv(*args: str) -> tuple[str, ...]:
    # The script is fixed text; every value is a positional parameter, never shell code.
    return ("/bin/sh", "-c", script(), "parallax-files", *args)


def error_for(code: int, message: str, path: str) -> ParallaxError:
    """The project error for the helper's exit ``code`` (its stderr is ``message``)."""
    said = message.strip()[:300]
    shown = path[:300]
    errors: dict[int, ParallaxError] = {
        64: PathForbiddenError(f"{shown} is outside the agent's workspace and home"),
        65: PathNotFoundError(f"{shown} does not exist in the agent"),
        66: FileTypeForbiddenError(f"{shown} is not a regular file or folder"),
        67: PathConflictError(f"{shown}: {said or 'something is in the way'}"),
        68: WorkspaceFullError(f"no room left in the agent to write {shown}"),
        69: DownloadTooLargeError(f"{shown} is too large to download ({said} bytes)"),
        70: DirectoryNotEmptyError(f"the folder {shown} is not empty"),
        71: BadArchiveError(f"tar could not unpack the archive: {said}"),
        72: FilePermissionError(f"{shown}: {said or 'permission denied'}"),
    }
    if code in errors:
        return errors[code]
    if code in (126, 127):
        return FilesUnavailableError(
            "the agent's image lacks /bin/sh or a tool the file helper needs (tar, stat, du)"
        )
    return EngineError(f"the file helper failed in the agent (exit {code})")


class _Run:
    """One run of the helper: its hijacked connection, stdout as it comes, stderr kept."""

    def __init__(
        self,
        engine: Engine,
        exec_id: str,
        reader: asyncio.StreamReader,
        writer: RawWriter,
    ) -> None:
        self.engine = engine
        self.exec_id = exec_id
        self.reader = reader
        self.writer = writer
        self.stderr = bytearray()

    @classmethod
    async def start(
        cls, engine: Engine, container_id: str, args: tuple[str, ...], *, stdin: bool
    ) -> _Run:
        spec = ExecSpec(argv=argv(*args), stdin=b"" if stdin else None)
        exec_id = await processes.create(engine, container_id, spec, tty=False)
        reader, writer = await processes.start(engine, exec_id, tty=False)
        return cls(engine, exec_id, reader, writer)

    async def next_stdout(self) -> bytes | None:
        """The next piece of stdout; None once the process has ended."""
        async with engine_call("exec", "start", self.exec_id[:12]):
            while (frame := await read_frame(self.reader)) is not None:
                stream, payload = frame
                if stream == STDOUT:
                    if payload:
                        return payload
                elif len(self.stderr) < _STDERR_LIMIT:
                    self.stderr.extend(payload[: _STDERR_LIMIT - len(self.stderr)])
        return None

    async def read_all(self, limit: int) -> bytes:
        out = bytearray()
        while (chunk := await self.next_stdout()) is not None:
            if len(out) < limit:
                out.extend(chunk[: limit - len(out)])
        return bytes(out)

    async def exit_code(self) -> int:
        code = await processes.exit_code(self.engine, self.exec_id)
        return -1 if code is None else code

    async def check(self, path: str) -> None:
        code = await self.exit_code()
        if code != 0:
            raise error_for(code, self.stderr.decode("utf-8", "replace"), path)

    def close(self) -> None:
        self.writer.close()


async def _feed(writer: RawWriter, chunks: AsyncIterator[bytes]) -> None:
    """Write every chunk (waiting for the process to take them), then half-close; half-close
    also when ``chunks`` fails, so that the helper sees the end and stops."""
    try:
        async for chunk in chunks:
            view = memoryview(chunk)
            for begin in range(0, len(view), _STDIN_CHUNK):
                writer.write(view[begin : begin + _STDIN_CHUNK])
                await writer.drain()
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            if writer.can_write_eof():
                writer.write_eof()


class DockerFiles:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def open_read(self, container_id: str, path: str, max_bytes: int) -> FileStream:
        run = await _Run.start(
            self._engine, container_id, ("read", path, str(max_bytes)), stdin=False
        )
        try:
            head, rest = await _header(run)
        except BaseException:
            run.close()
            raise
        if head is None:
            run.close()
            await run.check(path)
            raise EngineError("the file helper ended without an answer")
        parts = head.split(" ")
        if len(parts) != 3 or parts[0] != "ok" or parts[1] not in ("file", "dir"):
            run.close()
            raise EngineError("the file helper gave an answer this service cannot read")
        kind: Literal["file", "dir"] = "file" if parts[1] == "file" else "dir"
        return FileStream(kind=kind, size=int(parts[2]), chunks=_body(run, rest, path))

    async def list_dir(self, container_id: str, path: str, limit: int) -> DirListing:
        run = await _Run.start(self._engine, container_id, ("list", path, str(limit)), stdin=False)
        try:
            raw = await run.read_all(_LISTING_LIMIT)
        finally:
            run.close()
        await run.check(path)
        return parse_listing(raw)

    async def stage(
        self,
        container_id: str,
        directory: str,
        stage: str,
        chunks: AsyncIterator[bytes],
        *,
        name: str | None = None,
    ) -> None:
        args = ("stage", directory, stage) + ((name,) if name is not None else ())
        run = await _Run.start(self._engine, container_id, args, stdin=True)
        feeder = asyncio.create_task(_feed(run.writer, chunks), name="parallax-files-stdin")
        try:
            await run.read_all(_HEADER_LIMIT)
        finally:
            if not feeder.done():
                # The helper ended before it took everything (it refused; its code says why)
                # or this request was cancelled.
                feeder.cancel()
            fed = (await asyncio.gather(feeder, return_exceptions=True))[0]
            run.close()
        # The upload's own failure (too large, a refused member, the caller gone) comes first:
        # the helper may have taken the cut stream for a whole one.
        if isinstance(fed, BaseException) and not isinstance(fed, asyncio.CancelledError):
            raise fed
        await run.check(directory if name is None else f"{directory}/{name}")

    async def commit(self, container_id: str, directory: str, stage: str) -> None:
        await self._simple(container_id, ("commit", directory, stage), directory)

    async def discard(self, container_id: str, directory: str, stage: str) -> None:
        await self._simple(container_id, ("discard", directory, stage), directory)

    async def remove(self, container_id: str, path: str, recursive: bool) -> None:
        await self._simple(container_id, ("remove", path, "1" if recursive else "0"), path)

    async def _simple(self, container_id: str, args: tuple[str, ...], path: str) -> None:
        run = await _Run.start(self._engine, container_id, args, stdin=False)
        try:
            await run.read_all(_HEADER_LIMIT)
        finally:
            run.close()
        await run.check(path)


async def _header(run: _Run) -> tuple[str | None, bytes]:
    """The helper's first line, and what came after it; (None, b"") when it printed none."""
    pending = b""
    while b"\n" not in pending:
        chunk = await run.next_stdout()
        if chunk is None:
            return None, b""
        pending += chunk
        if len(pending) > _HEADER_LIMIT and b"\n" not in pending[:_HEADER_LIMIT]:
            raise EngineError("the file helper gave an answer this service cannot read")
    line, _, rest = pending.partition(b"\n")
    return line.decode("utf-8", "replace"), rest


async def _body(run: _Run, first: bytes, path: str) -> AsyncGenerator[bytes, None]:
    try:
        if first:
            yield first
        while (chunk := await run.next_stdout()) is not None:
            yield chunk
        # A failure after the first byte (the folder changed under tar) must not pass for the
        # end of the data: the reader of the stream sees the error instead.
        await run.check(path)
    finally:
        run.close()


def parse_listing(raw: bytes) -> DirListing:
    """``ok PATH\\n`` then ``TYPE/SIZE/MTIME/MODE\\0NAME\\0TARGET\\0`` per entry (``more\\0``
    closes a listing cut at its limit)."""
    head, _, body = raw.partition(b"\n")
    if not head.startswith(b"ok "):
        raise EngineError("the file helper gave an answer this service cannot read")
    fields = body.split(b"\0")
    truncated = False
    entries: list[FileEntry] = []
    index = 0
    while index < len(fields):
        if fields[index] == b"more":
            truncated = True
            break
        if index + 2 >= len(fields):
            break
        meta, name, target = fields[index : index + 3]
        index += 3
        parts = meta.decode("utf-8", "replace").split("/")
        if len(parts) != 4 or not all(p.isdigit() for p in parts[1:]):
            continue
        kind = _KINDS.get(parts[0], "other")
        entries.append(
            FileEntry(
                name=name.decode("utf-8", "surrogateescape"),
                kind=kind,
                size=int(parts[1]),
                mtime=float(parts[2]),
                mode=int(parts[3], 8),
                target=target.decode("utf-8", "surrogateescape") if kind == "symlink" else None,
            )
        )
    return DirListing(
        path=head[3:].decode("utf-8", "surrogateescape"),
        entries=tuple(entries),
        truncated=truncated,
    )
