"""One connection to the Docker Engine API over its Unix socket (or, for a Swarm node's engine,
over TCP with mutual TLS: ``TlsEndpoint``), with aiohttp underneath.

Every request is bounded: a plain request by ``request_timeout_s`` as a whole, a stream (events,
followed logs, builds) only while connecting, since it lasts as long as its subject does. The
API version is asked of the engine once (``GET /version``) and every later path carries it, so
the engine answers in the shape this client reads. Answers outside 2xx raise ``EngineAPIError``
with the engine's status and message; backends/docker/errors.py decides what each one means.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from parallax_docker.backends.docker.engine.tls_stream import RawWriter, open_tls_stream

# The newest API version whose answers this package reads; a newer engine speaks it too.
MAX_API_VERSION = "1.45"
_ERROR_BODY_LIMIT = 64 * 1024
_HEAD_LIMIT = 64 * 1024
_BASE_URL = "http://docker"

Params = Mapping[str, str] | Sequence[tuple[str, str]]


@dataclass(frozen=True)
class TlsEndpoint:
    """An engine on TCP that answers only clients with a certificate its CA signed; ``context``
    holds that CA and the client's certificate (an engine socket is never open on TCP without).
    """

    host: str
    port: int
    context: ssl.SSLContext = field(repr=False)

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"


class EngineAPIError(Exception):
    """The engine answered ``status`` (outside 2xx) to ``method path``."""

    def __init__(self, status: int, message: str, method: str = "", path: str = "") -> None:
        super().__init__(f"{method} {path}: {status}")
        self.status = status
        self.message = message
        self.method = method
        self.path = path


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def negotiate(server_max: str, server_min: str, client_max: str = MAX_API_VERSION) -> str:
    """The API version to speak: the newest both sides know, never below the engine's minimum."""
    chosen = min(server_max, client_max, key=_version_key)
    if server_min and _version_key(chosen) < _version_key(server_min):
        return server_min
    return chosen


def error_message(body: bytes) -> str:
    """The ``message`` of the engine's JSON error body; the raw text when it is not JSON."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return body.decode("utf-8", "replace").strip()
    return str(data.get("message", "")) if isinstance(data, dict) else ""


class EngineClient:
    """Requests to one engine; the aiohttp session is made on first use, on the running loop."""

    def __init__(
        self,
        socket_path: str | TlsEndpoint,
        *,
        request_timeout_s: float = 30.0,
        connect_timeout_s: float = 3.0,
        api_version: str | None = None,
    ) -> None:
        self.socket_path = socket_path
        self.request_timeout_s = request_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._version = api_version
        self._version_lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self._fresh_session: aiohttp.ClientSession | None = None

    @property
    def _base_url(self) -> str:
        if isinstance(self.socket_path, TlsEndpoint):
            return self.socket_path.base_url
        return _BASE_URL

    def _client(self, fresh: bool = False) -> aiohttp.ClientSession:
        session = self._fresh_session if fresh else self._session
        if session is None or session.closed:
            connector: aiohttp.BaseConnector
            if isinstance(self.socket_path, TlsEndpoint):
                connector = aiohttp.TCPConnector(ssl=self.socket_path.context, force_close=fresh)
            else:
                connector = aiohttp.UnixConnector(path=self.socket_path, force_close=fresh)
            session = aiohttp.ClientSession(connector=connector)
            if fresh:
                self._fresh_session = session
            else:
                self._session = session
        return session

    async def _connect(self) -> tuple[asyncio.StreamReader, RawWriter]:
        """A raw connection of its own (for a hijacked exec), able to half-close."""
        where = self.socket_path
        if isinstance(where, TlsEndpoint):
            return await open_tls_stream(where.host, where.port, where.context, limit=_HEAD_LIMIT)
        return await asyncio.open_unix_connection(where, limit=_HEAD_LIMIT)

    async def close(self) -> None:
        for session in (self._session, self._fresh_session):
            if session is not None:
                await session.close()
        self._session = self._fresh_session = None

    def timeout(self, extra_s: float = 0.0) -> aiohttp.ClientTimeout:
        """A plain request's bound (plus ``extra_s`` the engine is known to hold it)."""
        return aiohttp.ClientTimeout(
            total=self.request_timeout_s + extra_s,
            connect=self.connect_timeout_s,
            sock_connect=self.connect_timeout_s,
        )

    def stream_timeout(self, total_s: float | None = None) -> aiohttp.ClientTimeout:
        """A stream's bound: connecting only, unless ``total_s`` caps the whole of it."""
        return aiohttp.ClientTimeout(
            total=total_s,
            sock_read=None,
            connect=self.connect_timeout_s,
            sock_connect=self.connect_timeout_s,
        )

    async def api_version(self) -> str:
        """The version every path carries; asked of the engine once ("" speaks unversioned)."""
        if self._version is not None:
            return self._version
        async with self._version_lock:
            if self._version is None:
                async with self._send("GET", "/version", timeout=self.timeout()) as response:
                    info = await response.json(content_type=None)
                self._version = negotiate(
                    str(info.get("ApiVersion") or MAX_API_VERSION),
                    str(info.get("MinAPIVersion") or ""),
                )
            return self._version

    async def path(self, path: str) -> str:
        version = await self.api_version()
        return f"/v{version}/{path}" if version else f"/{path}"

    @asynccontextmanager
    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        fresh: bool = False,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send ``method path``; the open response (EngineAPIError unless 2xx).

        ``body`` is sent as JSON, ``data`` as it is (bytes or an async iterator of bytes).
        ``fresh``: over a new connection, never a kept one (see ``json``).
        """
        url = await self.path(path)
        async with self._send(
            method,
            url,
            params=params,
            body=body,
            data=data,
            headers=headers,
            timeout=timeout or self.timeout(),
            fresh=fresh,
        ) as response:
            yield response

    @asynccontextmanager
    async def _send(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        body: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: aiohttp.ClientTimeout,
        fresh: bool = False,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        async with self._client(fresh).request(
            method,
            self._base_url + url,
            params=params,
            json=body,
            data=data,
            headers=headers,
            timeout=timeout,
        ) as response:
            if not 200 <= response.status < 300:
                raw = await response.content.read(_ERROR_BODY_LIMIT)
                raise EngineAPIError(response.status, error_message(raw), method, url)
            try:
                yield response
            finally:
                # A stream left early must not go back to the pool half read.
                response.close()

    async def json(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
        timeout: aiohttp.ClientTimeout | None = None,
        fresh: bool = False,
    ) -> Any:
        """The JSON the engine answered (None for an empty body).

        ``fresh``: sent over a new connection. An engine shutting down stops taking new
        connections first and then stops its containers, while kept ones still carry requests:
        a container start sent on one then races the shutdown.
        """
        async with self.request(
            method, path, params=params, body=body, timeout=timeout, fresh=fresh
        ) as response:
            raw = await response.read()
        return json.loads(raw) if raw.strip() else None

    async def read(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> bytes:
        async with self.request(method, path, params=params, timeout=timeout) as response:
            return await response.read()

    async def hijack(
        self, path: str, body: Mapping[str, Any]
    ) -> tuple[asyncio.StreamReader, RawWriter]:
        """POST ``path`` asking for an upgrade, and take over the raw connection.

        The exec start endpoint answers with the process's streams on the very connection the
        request came on, both ways; stdin can then be half-closed so the process reads
        end-of-file while its output keeps flowing back.
        """
        url = await self.path(path)
        payload = json.dumps(dict(body)).encode()
        head = (
            f"POST {url} HTTP/1.1\r\n"
            "Host: docker\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n"
            "Connection: Upgrade\r\n"
            "Upgrade: tcp\r\n\r\n"
        ).encode()
        async with asyncio.timeout(self.connect_timeout_s):
            reader, writer = await self._connect()
        try:
            writer.write(head + payload)
            await writer.drain()
            async with asyncio.timeout(self.request_timeout_s):
                status, headers = parse_head(await reader.readuntil(b"\r\n\r\n"))
                if status not in (101, 200):
                    raw = await read_body(reader, headers)
                    raise EngineAPIError(status, error_message(raw), "POST", url)
        except BaseException:
            writer.close()
            raise
        return reader, writer


def parse_head(raw: bytes) -> tuple[int, dict[str, str]]:
    """(status, lower-cased headers) of an HTTP/1.1 answer's head."""
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise EngineAPIError(502, "malformed answer", "POST", "")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def read_body(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes:
    """An error answer's body (bounded), by its length or its chunks."""
    if "content-length" in headers:
        return await reader.readexactly(min(int(headers["content-length"]), _ERROR_BODY_LIMIT))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out = bytearray()
        while len(out) < _ERROR_BODY_LIMIT:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            if size == 0:
                break
            out.extend(await reader.readexactly(size))
            await reader.readexactly(2)
        return bytes(out)
    return await reader.read(_ERROR_BODY_LIMIT)
