"""HTTP/1.1 to the model providers, for the gateway: kept-alive connections per origin, each
request sent in one write, each answer handed on as its bytes arrive.

The gateway's whole cost is a budget of about a millisecond per call, and a general client
(httpx over anyio and h11) spent most of it on layers this path does not use. This one does
one thing: an asyncio protocol per connection with httptools' parser (the C parser uvicorn uses),
TLS from the ``ssl`` context it is given. Framing follows the parser: Content-Length, chunked
(decoded), or the body until the connection closes. ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY``
of the service's environment are honoured: an https origin through a ``CONNECT`` tunnel (TLS
end to end), a plain one by asking the proxy with the absolute URL.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from parallax_docker.runtime.gateway.upstream_connection import Connection, UpstreamError


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int
    # The path the settings' URL ends in (a provider mounted below a prefix).
    base_path: str

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urlsplit(url)
        secure = parts.scheme == "https"
        if parts.hostname is None:
            raise ValueError(f"no host in {url!r}")
        return cls(
            parts.scheme,
            parts.hostname,
            parts.port or (443 if secure else 80),
            parts.path.rstrip("/"),
        )

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    # A Proxy-Authorization line (CRLF first) when the proxy's URL names a user, else b"".
    authorization: bytes

    @classmethod
    def of(cls, url: str) -> Proxy:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError("a proxy for the gateway must be an http:// URL with a host")
        authorization = b""
        if parts.username is not None:
            user = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = b"\r\nproxy-authorization: Basic " + base64.b64encode(user.encode())
        return cls(parts.hostname, parts.port or 80, authorization)


class Answer:
    """A provider's answer: status and headers now, the body as it arrives."""

    def __init__(self, pool: UpstreamPool, origin: Origin, connection: Connection) -> None:
        self._pool = pool
        self._origin = origin
        self._connection: Connection | None = connection
        self.status = connection.status
        self.headers = connection.headers

    def header(self, name: bytes) -> str:
        for key, value in self.headers:
            if key.lower() == name:
                return value.decode("latin-1")
        return ""

    async def chunks(self) -> AsyncIterator[bytes]:
        connection = self._connection
        assert connection is not None
        while (chunk := await connection.next_chunk(self._pool.read_timeout_s)) is not None:
            yield chunk

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    def abort(self) -> None:
        """Drop the connection mid-answer (nobody reads the rest)."""
        if self._connection is not None:
            self._connection.close()

    def close(self) -> None:
        """Give the connection back when the answer was read to its end; else drop it."""
        if self._connection is not None:
            self._pool.release(self._origin, self._connection)
            self._connection = None


class UpstreamPool:
    def __init__(
        self,
        tls: ssl.SSLContext,
        *,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 900.0,
        max_idle: int = 200,
    ) -> None:
        self._tls = tls
        self._connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self._max_idle = max_idle
        self._idle: dict[Origin, list[Connection]] = {}
        self._proxies = urllib.request.getproxies_environment()
        self._proxy_of: dict[Origin, Proxy | None] = {}

    def proxy(self, origin: Origin) -> Proxy | None:
        """The proxy an origin is reached through, from the service's environment."""
        if origin not in self._proxy_of:
            url = self._proxies.get(origin.scheme)
            bypass = urllib.request.proxy_bypass(origin.host)
            self._proxy_of[origin] = Proxy.of(url) if url and not bypass else None
        return self._proxy_of[origin]

    def target_prefix(self, origin: Origin) -> bytes:
        """What goes before a request's path: a plain origin through a proxy is asked for by
        its absolute URL, with the proxy's credentials beside it (see ``proxy_lines``)."""
        if origin.scheme == "http" and self.proxy(origin) is not None:
            return f"http://{origin.host_header}".encode()
        return b""

    def proxy_lines(self, origin: Origin) -> bytes:
        proxy = self.proxy(origin)
        if origin.scheme == "http" and proxy is not None:
            return proxy.authorization
        return b""

    async def _connect(self, origin: Origin) -> Connection:
        try:
            return await asyncio.wait_for(self._open(origin), self._connect_timeout_s)
        except (
            OSError,
            TimeoutError,
            ValueError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ) as exc:
            raise UpstreamError(f"cannot connect to the provider: {type(exc).__name__}") from exc

    async def _open(self, origin: Origin) -> Connection:
        loop = asyncio.get_running_loop()
        secure = origin.scheme == "https"
        proxy = self.proxy(origin)
        if proxy is None or not secure:
            host, port = (origin.host, origin.port) if proxy is None else (proxy.host, proxy.port)
            _, connection = await loop.create_connection(
                Connection,
                host,
                port,
                ssl=self._tls if secure else None,
                server_hostname=origin.host if secure else None,
            )
            return connection
        # A tunnel through the proxy, then TLS with the provider inside it.
        reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
        try:
            authority = origin.host_header if origin.port != 443 else f"{origin.host_header}:443"
            writer.write(
                b"CONNECT %s HTTP/1.1\r\nhost: %s%s\r\n\r\n"
                % (authority.encode(), authority.encode(), proxy.authorization)
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b" ", 2)[1] if head.count(b" ") >= 1 else b""
            if status != b"200":
                raise OSError(f"the proxy refused the tunnel ({status.decode('latin-1')})")
            connection = Connection()
            tls = await loop.start_tls(
                writer.transport, connection, self._tls, server_hostname=origin.host
            )
        except BaseException:
            writer.close()
            raise
        assert isinstance(tls, asyncio.Transport)
        connection.connection_made(tls)
        # The stream writer closes its transport (the tunnel) when collected.
        connection.tunnel = writer
        return connection

    def _take_idle(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin, [])
        while idle:
            connection = idle.pop()
            if not connection.lost:
                return connection
        return None

    async def request(self, origin: Origin, head: bytes, body: bytes, *, headless: bool) -> Answer:
        """Send a request (its head already framed, with Host and Content-Length) and wait for
        the answer's head. A kept-alive connection the provider closed meanwhile fails before
        any byte of an answer: the request then goes once more on a new connection."""
        reused = self._take_idle(origin)
        for connection in (reused, None):
            if connection is None:
                connection = await self._connect(origin)
            else:
                connection.reset()
            try:
                await connection.send(head + body)
                await connection.head(self.read_timeout_s)
                if headless:
                    connection.headless()
            except UpstreamError:
                connection.close()
                if connection is reused and not connection.any_byte and not connection.timed_out:
                    continue
                raise
            return Answer(self, origin, connection)
        raise UpstreamError("the provider closed the connection")  # not reached

    def release(self, origin: Origin, connection: Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if connection.reusable and len(idle) < self._max_idle:
            idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
