"""The gateway's forwarder as an ASGI application, against a real local provider: what goes
upstream (the key, never the token; the agent's path and query), what comes back, what is
counted, and an agent that hangs up mid-stream ending the provider's answer too. (The whole
path, relays and real CLIs included, is tests/integration/test_gateway.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from parallax_docker.config import Settings
from parallax_docker.errors import ConfigError
from parallax_docker.runtime.gateway.forward import Forwarder, Message
from parallax_docker.runtime.gateway.keys import KeyStore
from parallax_docker.runtime.gateway.meter import Caller, Meter, price_table
from parallax_docker.runtime.gateway.proxy import EgressProxy
from parallax_docker.runtime.gateway.server import GatewayServer
from parallax_docker.runtime.gateway.tokens import TokenBook
from parallax_docker.runtime.gateway.upstream import UpstreamPool
from tests.support.tamper import with_char_changed

KEY = "sk-ant-real-key-0123456789"
USAGE = {"usage": {"input_tokens": 7, "output_tokens": 3}, "model": "claude-haiku-4"}


class Provider:
    """A local stand-in that records what reached it."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
        self.hung_up = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = [
            int(v)
            for k, _, v in (x.partition(b":") for x in head.split(b"\r\n"))
            if k.lower() == b"content-length"
        ]
        self.heads.append(head)
        self.bodies.append(await reader.readexactly(length[0]) if length else b"")
        if b"stream" in head.split(b"\r\n")[0]:
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\n\r\n"
            )
            try:
                for _ in range(200):
                    event = b"data: " + json.dumps(USAGE).encode() + b"\n\n"
                    writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                    await writer.drain()
                    await asyncio.sleep(0.02)
            except ConnectionError:
                # The gateway dropped the connection before the answer's end.
                self.hung_up.set()
        else:
            body = json.dumps(USAGE).encode()
            writer.write(
                b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nx-request-id: r1\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
        writer.close()

    async def __aenter__(self) -> Provider:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()


class Gateway:
    def __init__(self, tmp_path: Path, provider: Provider) -> None:
        settings = Settings(
            state_dir=tmp_path / "state",
            secrets_dir=tmp_path / "secrets",
            gateway_anthropic_url=f"http://127.0.0.1:{provider.port}/base",
        )
        self.tokens = TokenBook(tmp_path / "token.key")
        self.token = self.tokens.issue("a1")
        keys = KeyStore(tmp_path / "keys")
        keys.put("a1", {"anthropic": KEY})
        self.meter = Meter(price_table(None))
        self.pool = UpstreamPool(ssl.create_default_context(), read_timeout_s=5)
        self.app = Forwarder(
            settings,
            self.tokens,
            keys,
            self.meter,
            lambda agent, peer: Caller(agent) if peer == "10.0.0.2" else None,
            lambda caller: None,
            self.pool,
        )

    async def call(
        self,
        path: str,
        *,
        method: str = "POST",
        query: bytes = b"",
        token: str | None = None,
        body: bytes = b"{}",
        hang_up_after: int | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        scope: dict[str, Any] = {
            "type": "http",
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "headers": [
                (b"x-api-key", (token or self.token).encode()),
                (b"content-type", b"application/json"),
                (b"anthropic-version", b"2023-06-01"),
            ],
            "client": ("10.0.0.2", 40000),
        }
        sent: list[Message] = []
        requested = False
        hung_up = asyncio.Event()

        async def receive() -> Message:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": body, "more_body": False}
            await hung_up.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)
            chunks = [m for m in sent if m["type"] == "http.response.body"]
            if hang_up_after is not None and len(chunks) >= hang_up_after:
                hung_up.set()

        await asyncio.wait_for(self.app(scope, receive, send), 10)
        start = sent[0]
        headers = {k.decode(): v.decode() for k, v in start["headers"]}
        answer = b"".join(m.get("body", b"") for m in sent[1:])
        return start["status"], headers, answer


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    async with Provider() as made:
        yield made


async def test_the_key_goes_upstream_and_the_token_never_does(
    tmp_path: Path, provider: Provider
) -> None:
    gateway = Gateway(tmp_path, provider)
    status, headers, body = await gateway.call(
        "/anthropic/v1/messages%2Fx", query=b"beta=true&key=" + gateway.token.encode()
    )
    assert (status, json.loads(body), headers["x-request-id"]) == (201, USAGE, "r1")
    assert headers["content-length"] == str(len(body))
    head = provider.heads[0].decode()
    # The agent's path as it sent it, below the upstream's own prefix; ?key= left behind.
    assert head.startswith("POST /base/v1/messages%2Fx?beta=true HTTP/1.1\r\n")
    assert f"x-api-key: {KEY}" in head and gateway.token not in head
    assert f"host: 127.0.0.1:{provider.port}" in head and "accept-encoding: identity" in head
    assert provider.bodies == [b"{}"]
    tally = gateway.meter.of_agent("a1")
    assert (tally.requests, tally.tokens) == (1, 10)
    gateway.pool.close()


async def test_refusals_are_answered_here_in_the_providers_format(
    tmp_path: Path, provider: Provider
) -> None:
    gateway = Gateway(tmp_path, provider)
    forged = with_char_changed(gateway.tokens.issue("a2"), -1)
    status, _, body = await gateway.call("/anthropic/v1/messages", token=forged)
    assert status == 401 and json.loads(body)["error"]["type"] == "authentication_error"
    assert "GATEWAY_TOKEN_INVALID" in body.decode() and forged not in body.decode()
    status, _, body = await gateway.call("/nowhere/v1/messages")
    assert status == 404 and json.loads(body)["code"] == "NOT_FOUND"
    status, _, body = await gateway.call("/anthropic/v1/messages", method="TRACE")
    assert status == 405 and json.loads(body)["code"] == "METHOD_NOT_ALLOWED"
    assert provider.heads == []
    gateway.pool.close()


async def test_an_unreachable_provider_is_a_502_in_its_format(tmp_path: Path) -> None:
    async with Provider() as gone:
        pass
    gateway = Gateway(tmp_path, gone)
    status, _, body = await gateway.call("/anthropic/v1/messages")
    assert status == 502 and "GATEWAY_UPSTREAM_UNREACHABLE" in body.decode()
    assert gateway.meter.refusals == {"upstream": 1}


async def test_an_agent_that_hangs_up_mid_stream_ends_the_providers_answer(
    tmp_path: Path, provider: Provider
) -> None:
    gateway = Gateway(tmp_path, provider)
    status, headers, body = await gateway.call("/anthropic/v1/stream", hang_up_after=3)
    assert status == 200 and headers["content-type"] == "text/event-stream"
    assert "transfer-encoding" not in headers  # framing is the agent-side server's
    # Well before the provider's 200 events (4 s): the connection was dropped for it.
    await asyncio.wait_for(provider.hung_up.wait(), 2)
    assert body.startswith(b"data: ")
    assert gateway.meter.of_agent("a1").tokens == 10
    gateway.pool.close()


async def test_a_state_folder_too_long_for_a_socket_is_a_config_error(tmp_path: Path) -> None:
    folder = tmp_path / ("x" * 120) / "socket"
    server = GatewayServer(folder, os.geteuid(), EgressProxy(lambda peer: None, Meter({}), {}))
    with pytest.raises(ConfigError, match="over the 107") as caught:
        await server.start(lambda pool: pytest.fail("nothing is made"))
    assert "PARALLAX_STATE_DIR" in (caught.value.resolution or "")
    assert not folder.exists()
