"""The gateway's client honours the service's proxy settings: an https provider through a real
CONNECT tunnel (TLS with the provider end to end, checked against its own certificate), a plain
one asked for by absolute URL, NO_PROXY going direct. Local servers only."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from parallax_docker.runtime.gateway.upstream import Origin, UpstreamPool

ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


class ProxyServer:
    """A forward proxy: CONNECT tunnels, and plain requests answered itself (recorded)."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        if head.startswith(b"CONNECT "):
            host, _, port = head.split(b" ")[1].decode().rpartition(":")
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            return
        writer.write(ANSWER)
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> ProxyServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        self._server.close()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


@pytest.fixture
async def provider(certificate: tuple[Path, Path]) -> AsyncIterator[int]:
    key, cert = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(ANSWER)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    yield server.sockets[0].getsockname()[1]
    server.close()


def _trusting(cert: Path) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.load_verify_locations(cert)
    return context


async def test_an_https_provider_is_reached_through_a_connect_tunnel(
    monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path], provider: int
) -> None:
    async with ProxyServer() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://user:p%40ss@127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        pool = UpstreamPool(_trusting(certificate[1]))
        origin = Origin.of(f"https://localhost:{provider}")
        assert pool.target_prefix(origin) == b"" and pool.proxy_lines(origin) == b""
        answer = await pool.request(
            origin, b"GET /v1/models HTTP/1.1\r\nhost: localhost\r\n\r\n", b"", headless=False
        )
        assert (answer.status, await answer.read()) == (200, b"ok")
        answer.close()
        pool.close()
    connect = proxy.heads[0].decode()
    assert connect.startswith(f"CONNECT localhost:{provider} HTTP/1.1\r\n")
    # user:p@ss, in Basic form.
    assert "proxy-authorization: Basic dXNlcjpwQHNz" in connect


async def test_a_plain_provider_is_asked_for_by_its_absolute_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with ProxyServer() as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        pool = UpstreamPool(ssl.create_default_context())
        origin = Origin.of("http://models.internal:11434")
        prefix = pool.target_prefix(origin)
        assert prefix == b"http://models.internal:11434"
        head = b"POST " + prefix + b"/api/chat HTTP/1.1\r\nhost: models.internal:11434\r\n\r\n"
        answer = await pool.request(origin, head, b"", headless=False)
        assert await answer.read() == b"ok"
        answer.close()
        pool.close()
    assert proxy.heads[0].startswith(b"POST http://models.internal:11434/api/chat HTTP/1.1")


async def test_no_proxy_names_go_direct(
    monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path], provider: int
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "localhost")
    pool = UpstreamPool(_trusting(certificate[1]))
    origin = Origin.of(f"https://localhost:{provider}")
    assert pool.proxy(origin) is None
    answer = await pool.request(origin, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", b"", headless=False)
    assert await answer.read() == b"ok"
    answer.close()
    pool.close()
