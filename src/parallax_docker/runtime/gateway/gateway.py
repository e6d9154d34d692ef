"""The model gateway: a runtime part with ``start()``/``stop()`` that owns the token book, the
provider keys, the meter, the relays and the HTTP server on the Unix socket the relays reach.
docs/gateway.md draws the path of one call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import Generator
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from parallax_docker.backends.base import Backend
from parallax_docker.backends.capabilities import SecretDelivery
from parallax_docker.config import Settings
from parallax_docker.models import AgentStatus
from parallax_docker.runtime.gateway.forward import Forwarder
from parallax_docker.runtime.gateway.keys import KeyStore
from parallax_docker.runtime.gateway.meter import Caller, Meter, price_table
from parallax_docker.runtime.gateway.relays import SOCKET_NAME, Relays
from parallax_docker.runtime.gateway.secrets import GatewaySecrets
from parallax_docker.runtime.gateway.tokens import TokenBook
from parallax_docker.runtime.registry import Registry

log = logging.getLogger(__name__)

# The uid the relays run as (nobody) when the service is root: it alone may enter the socket's
# folder. A service that is not root runs them as its own uid.
RELAY_UID = 65534
_LIVE = frozenset(
    {AgentStatus.STARTING, AgentStatus.AUTHENTICATING, AgentStatus.READY, AgentStatus.BUSY}
)


class _EmbeddedServer(uvicorn.Server):
    # The service's own server handles the process's signals; this one is stopped by stop().
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Gateway:
    def __init__(self, settings: Settings, backend: Backend, registry: Registry) -> None:
        self._settings = settings
        self._registry = registry
        folder = settings.state_dir / "gateway" / settings.instance
        self.socket_folder = folder / "socket"
        self.tokens = TokenBook(folder / "token.key")
        self.keys = KeyStore(folder / "keys")
        self.meter = Meter(price_table(settings.gateway_prices))
        self._relay_uid = RELAY_UID if os.geteuid() == 0 else os.geteuid()
        self.relays = Relays(
            backend,
            instance=settings.instance,
            image=settings.image_for("base"),
            socket_folder=self.socket_folder,
            user=f"{self._relay_uid}:{self._relay_uid}",
        )
        self._client: httpx.AsyncClient | None = None
        self._server: _EmbeddedServer | None = None
        self._serving: asyncio.Task[None] | None = None

    def secrets(self, inner: SecretDelivery) -> SecretDelivery:
        """``inner`` with provider keys kept here and the agent given its token instead."""
        return GatewaySecrets(inner, self.keys, self.tokens)

    def caller_of(self, agent_id: str) -> Caller | None:
        record = self._registry.find(agent_id)
        if record is None or record.stopping or record.status not in _LIVE:
            return None
        # The thread dimension is filled from the agent's thread once threads land (issue 15).
        return Caller(agent_id, record.labels.execution_id, None)

    @property
    def socket_path(self) -> Path:
        return self.socket_folder / SOCKET_NAME

    async def start(self) -> None:
        self.tokens.load()
        self.socket_folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.socket_folder, 0o700)
        if os.geteuid() == 0:
            os.chown(self.socket_folder, self._relay_uid, self._relay_uid)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        # TLS to the providers with the host's CA bundle (a proxy's CA included).
        context = ssl.create_default_context()
        self._client = httpx.AsyncClient(
            verify=context,
            timeout=httpx.Timeout(connect=10.0, read=900.0, write=60.0, pool=30.0),
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200),
            trust_env=True,
        )
        forwarder = Forwarder(
            self._settings, self.tokens, self.keys, self.meter, self.caller_of, self._client
        )
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
        app = Starlette(
            routes=[Route("/{provider}/{path:path}", forwarder.handle, methods=methods)]
        )
        config = uvicorn.Config(
            app,
            uds=str(self.socket_path),
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_keep_alive=120,
            backlog=2048,
        )
        self._server = _EmbeddedServer(config)
        self._serving = asyncio.create_task(self._server.serve(), name="gateway-server")
        while not self._server.started:
            if self._serving.done():
                await self._serving  # raises what stopped it
                raise RuntimeError("the gateway's server stopped at start-up")
            await asyncio.sleep(0.01)
        if os.geteuid() == 0:
            os.chown(self.socket_path, self._relay_uid, self._relay_uid)
        os.chmod(self.socket_path, 0o600)
        log.info("model gateway listening", extra={"socket": str(self.socket_path)})

    async def stop(self) -> None:
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._serving, timeout=10)
        if self._client is not None:
            await self._client.aclose()
