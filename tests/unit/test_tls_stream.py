"""The TLS stream a node's hijacked exec runs on: it half-closes (close_notify) and keeps
reading, over real TLS with certificates from scripts/swarm.sh."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from parallax_docker.backends.docker.engine.tls_stream import TlsWriter, open_tls_stream
from parallax_docker.backends.swarm.nodes import tls_context
from parallax_docker.errors import ConfigError

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "swarm.sh"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["bash", str(SCRIPT), "ca", str(folder)], check=True, capture_output=True)
    subprocess.run(
        ["bash", str(SCRIPT), "node-cert", str(folder), "node", "127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return folder


@pytest.fixture
def server(certs: Path) -> Iterator[tuple[int, list[bytes]]]:
    """An engine stand-in: reads until the client's close_notify, then answers what it read."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs / "ca.pem"))
    context.load_cert_chain(str(certs / "node.pem"), str(certs / "node-key.pem"))
    context.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        raw, _ = listener.accept()
        try:
            with context.wrap_socket(raw, server_side=True) as conn:
                data = b""
                while chunk := conn.recv(65536):  # b"" once close_notify has come
                    data += chunk
                received.append(data)
                conn.sendall(b"read " + str(len(data)).encode() + b" bytes: " + data[-8:])
        except (ssl.SSLError, OSError):
            raw.close()  # a client the CA did not sign

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], received
    thread.join(10)
    listener.close()


async def test_write_eof_ends_the_peers_input_while_its_output_still_comes(
    certs: Path, server: tuple[int, list[bytes]]
) -> None:
    port, received = server
    reader, writer = await open_tls_stream("127.0.0.1", port, tls_context(certs), limit=65536)
    payload = b"x" * 200_000 + b"the-end!"
    writer.write(payload)
    await writer.drain()
    assert writer.can_write_eof()
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    await writer.wait_closed()
    assert answer == b"read 200008 bytes: the-end!"
    assert received == [payload]


async def test_a_client_certificate_the_ca_did_not_sign_is_refused(
    certs: Path, tmp_path: Path, server: tuple[int, list[bytes]]
) -> None:
    subprocess.run(["bash", str(SCRIPT), "ca", str(tmp_path / "other")], check=True)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "ca.pem").write_bytes((certs / "ca.pem").read_bytes())
    for name in ("cert.pem", "key.pem"):
        (mixed / name).write_bytes((tmp_path / "other" / name).read_bytes())
    port, received = server
    opened: list[TlsWriter] = []
    with pytest.raises((ssl.SSLError, ConnectionError)):
        reader, writer = await open_tls_stream("127.0.0.1", port, tls_context(mixed), limit=1024)
        opened.append(writer)
        writer.write(b"hello")
        writer.write_eof()
        await asyncio.wait_for(reader.read(), 10)
    for writer in opened:  # TLS 1.3 refuses after the client's handshake: close what it opened
        writer.close()
        await writer.wait_closed()
    assert received == []


def test_missing_tls_files_are_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        tls_context(tmp_path)
    assert "PARALLAX_SWARM_TLS_DIR" in caught.value.resolution
