"""The gateway's HTTP server: uvicorn on a Unix socket in a 0700 folder, inside the service's
own event loop, serving the ``Forwarder`` (a plain ASGI application). Only the relays (the
folder's one other user) can reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import Callable, Generator
from pathlib import Path

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from parallax_docker.errors import ConfigError
from parallax_docker.runtime.gateway.forward import Forwarder
from parallax_docker.runtime.gateway.proxy import EgressProxy
from parallax_docker.runtime.gateway.relays import PROXY_SOCKET_NAME, SOCKET_NAME
from parallax_docker.runtime.gateway.upstream import UpstreamPool

log = logging.getLogger(__name__)

# The longest path a Unix socket may be bound at on Linux (sun_path holds 108 bytes with a NUL).
_MAX_SOCKET_PATH = 107


class _ProxiedHttp(HttpToolsProtocol):
    """HTTP/1.1 (httptools' parser) after the relay's PROXY protocol (v1) line, which names
    the agent's address:
    the client address a request shows is then the calling container's."""

    _MAX_LINE = 108  # the protocol's own bound on a v1 line

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head: bytes | None = b""

    def data_received(self, data: bytes) -> None:
        if self._head is None:
            super().data_received(data)
            return
        self._head += data
        end = self._head.find(b"\r\n")
        if end < 0:
            if len(self._head) > self._MAX_LINE:
                self.transport.close()
            return
        parts = self._head[:end].decode("ascii", "replace").split(" ")
        rest, self._head = self._head[end + 2 :], None
        if len(parts) != 6 or parts[0] != "PROXY" or not parts[4].isdigit():
            # Not from a relay: no address, so no token is accepted on it.
            self.transport.close()
            return
        self.client = (parts[2].removeprefix("::ffff:"), int(parts[4]))
        if rest:
            super().data_received(rest)


class _EmbeddedServer(uvicorn.Server):
    # The service's own server handles the process's signals; this one is stopped by stop().
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class GatewayServer:
    def __init__(self, folder: Path, relay_uid: int, proxy: EgressProxy) -> None:
        self.folder = folder
        self._relay_uid = relay_uid
        self._proxy = proxy
        self._pool: UpstreamPool | None = None
        self._server: _EmbeddedServer | None = None
        self._serving: asyncio.Task[None] | None = None

    @property
    def socket_path(self) -> Path:
        return self.folder / SOCKET_NAME

    @property
    def proxy_socket_path(self) -> Path:
        return self.folder / PROXY_SOCKET_NAME

    async def start(self, forwarder: Callable[[UpstreamPool], Forwarder]) -> None:
        for path in (self.socket_path, self.proxy_socket_path):
            if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
                raise ConfigError(
                    f"the gateway's socket path is {len(os.fsencode(path))} bytes long, over "
                    f"the {_MAX_SOCKET_PATH} a Unix socket's path may have",
                    resolution="Give PARALLAX_STATE_DIR a shorter folder (the socket lives in "
                    "<state>/gateway/<instance>/socket), or a shorter PARALLAX_INSTANCE.",
                )
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder, 0o700)
        root = os.geteuid() == 0
        if root:
            os.chown(self.folder, self._relay_uid, self._relay_uid)
        for stale in (self.socket_path, self.proxy_socket_path):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        # TLS to the providers with the host's CA bundle (a proxy's CA included).
        self._pool = UpstreamPool(ssl.create_default_context())
        config = uvicorn.Config(
            forwarder(self._pool),
            interface="asgi3",
            proxy_headers=False,
            uds=str(self.socket_path),
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_keep_alive=120,
            backlog=2048,
            http=_ProxiedHttp,
        )
        self._server = _EmbeddedServer(config)
        self._serving = asyncio.create_task(self._server.serve(), name="gateway-server")
        while not self._server.started:
            if self._serving.done():
                await self._serving  # raises what stopped it
                raise RuntimeError("the gateway's server stopped at start-up")
            await asyncio.sleep(0.01)
        await self._proxy.start(self.proxy_socket_path)
        for path in (self.socket_path, self.proxy_socket_path):
            if root:
                os.chown(path, self._relay_uid, self._relay_uid)
            os.chmod(path, 0o600)
        log.info("model gateway listening", extra={"socket": str(self.socket_path)})

    async def stop(self) -> None:
        await self._proxy.stop()
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._serving, timeout=10)
        if self._pool is not None:
            self._pool.close()
