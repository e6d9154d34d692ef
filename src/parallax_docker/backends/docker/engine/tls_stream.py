"""A raw connection to an engine over TLS that can still half-close (for a hijacked exec).

An exec's stdin ends when the client half-closes its side of the connection, and its output
keeps coming on the other. Over a Unix socket that is a TCP-like ``write_eof``; asyncio's TLS
transport offers none. Here TLS runs in memory (``ssl.MemoryBIO``) over a plain TCP
connection, so ``write_eof`` can send TLS's own end of writing (close_notify), which the
engine takes as the end of stdin, while the decrypted output is still read: the same thing the
docker CLI does over TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Protocol

_CHUNK = 64 * 1024


class RawWriter(Protocol):
    """The writing half of a hijacked connection (an asyncio.StreamWriter has all of it)."""

    def write(self, data: bytes | bytearray | memoryview) -> None: ...

    async def drain(self) -> None: ...

    def can_write_eof(self) -> bool: ...

    def write_eof(self) -> None: ...

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


class TlsWriter:
    """Writes through the in-memory TLS object; ``write_eof`` sends close_notify."""

    def __init__(
        self, tls: ssl.SSLObject, outgoing: ssl.MemoryBIO, writer: asyncio.StreamWriter
    ) -> None:
        self._tls = tls
        self._outgoing = outgoing
        self._writer = writer
        self.pump: asyncio.Task[None] | None = None

    def flush(self) -> None:
        data = self._outgoing.read()
        if data and not self._writer.is_closing():
            self._writer.write(data)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._tls.write(data)
        self.flush()

    async def drain(self) -> None:
        await self._writer.drain()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        # The peer's close_notify has not come (its output goes on): OpenSSL says it wants to
        # read, after it has put ours in the outgoing buffer.
        with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLError):
            self._tls.unwrap()
        self.flush()

    def close(self) -> None:
        if self.pump is not None:
            self.pump.cancel()
        self._writer.close()

    async def wait_closed(self) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self._writer.wait_closed()


async def open_tls_stream(
    host: str, port: int, context: ssl.SSLContext, *, limit: int
) -> tuple[asyncio.StreamReader, TlsWriter]:
    """Connect, shake hands, and return the decrypted reader with a writer that half-closes."""
    tcp_reader, tcp_writer = await asyncio.open_connection(host, port, limit=limit)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=host)
    writer = TlsWriter(tls, outgoing, tcp_writer)
    try:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                writer.flush()
                await tcp_writer.drain()
                data = await tcp_reader.read(_CHUNK)
                if not data:
                    raise ConnectionResetError("the engine closed the connection") from None
                incoming.write(data)
        writer.flush()
    except BaseException:
        tcp_writer.close()
        raise
    reader = asyncio.StreamReader(limit=limit)
    writer.pump = asyncio.get_running_loop().create_task(
        _pump(tls, incoming, tcp_reader, reader, writer), name="parallax-engine-tls"
    )
    return reader, writer


async def _pump(
    tls: ssl.SSLObject,
    incoming: ssl.MemoryBIO,
    source: asyncio.StreamReader,
    reader: asyncio.StreamReader,
    writer: TlsWriter,
) -> None:
    """Decrypt what arrives into ``reader`` until either side ends."""
    try:
        while True:
            data = await source.read(_CHUNK)
            if not data:
                break
            incoming.write(data)
            try:
                while True:
                    plain = tls.read(_CHUNK)
                    if not plain:
                        return
                    reader.feed_data(plain)
            except ssl.SSLWantReadError:
                writer.flush()  # a TLS 1.3 key update may want an answer
            except ssl.SSLZeroReturnError:
                return  # the engine's close_notify: its side has ended
    except (ConnectionError, ssl.SSLError) as exc:
        reader.set_exception(exc)
        return
    finally:
        if reader.exception() is None:
            reader.feed_eof()
