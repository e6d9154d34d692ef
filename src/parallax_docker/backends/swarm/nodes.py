"""The cluster's machines, and how the runtime reaches each one's engine.

The manager lists the nodes; what only a node's own engine can do (exec, logs, stats, the
container's inspect, terminals, its volumes) goes to that engine over TCP with mutual TLS:
every node's dockerd listens on ``PARALLAX_SWARM_ENGINE_PORT`` with ``--tlsverify`` and a
server certificate of the cluster's CA, and the runtime holds a client certificate of the same
CA (``PARALLAX_SWARM_TLS_DIR``: ca.pem, cert.pem, key.pem). No engine answers on TCP without
one (docs/swarm.md).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from parallax_docker.backends.base import NodeInfo
from parallax_docker.backends.docker.engine import Engine, EngineClient, TlsEndpoint
from parallax_docker.backends.docker.errors import engine_call
from parallax_docker.backends.swarm.engine import SwarmAPI
from parallax_docker.backends.swarm.translate import node_info, node_runtimes
from parallax_docker.errors import ConfigError, EngineError, SocketError

# Node states change seldom; one list serves every read made within this long.
_NODES_FRESH_S = 1.0


def tls_context(folder: Path) -> ssl.SSLContext:
    """The client side of the nodes' mutual TLS: the cluster's CA and the runtime's cert."""
    try:
        context = ssl.create_default_context(cafile=str(folder / "ca.pem"))
        context.load_cert_chain(str(folder / "cert.pem"), str(folder / "key.pem"))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the nodes' TLS files from {folder} ({type(exc).__name__})",
            resolution="Make them with `scripts/swarm.sh ca` (ca.pem, cert.pem, key.pem) and "
            "set PARALLAX_SWARM_TLS_DIR to that folder.",
        ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class Nodes:
    def __init__(
        self,
        api: SwarmAPI,
        tls: ssl.SSLContext,
        *,
        port: int,
        request_timeout_s: float,
        connect_timeout_s: float,
    ) -> None:
        self._api = api
        self._tls = tls
        self._port = port
        self._request_timeout_s = request_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._engines: dict[str, tuple[str, Engine]] = {}
        self._retired: list[Engine] = []
        self._known: dict[str, NodeInfo] = {}
        self._runtimes: set[str] = set()
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def list(self, fresh: bool = False) -> list[NodeInfo]:
        """Every node the manager knows; read again when older than a second or ``fresh``."""
        async with self._lock:
            if fresh or time.monotonic() - self._read_at > _NODES_FRESH_S:
                async with engine_call("node", "list"):
                    found = await self._api.nodes()
                self._known = {info.id: info for info in map(node_info, found)}
                self._runtimes = set().union(*(node_runtimes(n) for n in found))
                self._read_at = time.monotonic()
            return list(self._known.values())

    async def get(self, node_id: str | None) -> NodeInfo | None:
        if node_id is None:
            return None
        if node_id not in self._known:
            await self.list(fresh=True)
        else:
            await self.list()
        return self._known.get(node_id)

    def forget(self) -> None:
        """Read the nodes again on the next call (a node event came)."""
        self._read_at = 0.0

    @property
    def runtimes(self) -> set[str]:
        """The OCI runtimes nodes declare (their ``parallax.runtime`` engine label)."""
        return set(self._runtimes)

    def engine(self, node: NodeInfo) -> Engine:
        """The node's own engine, over mutual TLS (one client per node, kept)."""
        kept = self._engines.get(node.id)
        if kept is not None and kept[0] == node.address:
            return kept[1]
        if not node.address:
            raise EngineError(f"node {node.name} reports no address")
        engine = Engine(
            EngineClient(
                TlsEndpoint(node.address, self._port, self._tls),
                request_timeout_s=self._request_timeout_s,
                connect_timeout_s=self._connect_timeout_s,
            )
        )
        self._engines[node.id] = (node.address, engine)
        if kept is not None:
            # The node moved: its old client is closed with the others (a call may still use it).
            self._retired.append(kept[1])
        return engine

    async def close(self) -> None:
        engines = [engine for _, engine in self._engines.values()] + self._retired
        self._engines.clear()
        self._retired.clear()
        for engine in engines:
            await engine.close()


@asynccontextmanager
async def on_node(node: NodeInfo) -> AsyncIterator[None]:
    """Around a call to one node's engine: that node not answering is not the manager being
    away (which the runtime treats as the whole platform gone), so it leaves as EngineError."""
    try:
        yield
    except SocketError as exc:
        raise EngineError(
            f"node {node.name} ({node.address}) does not answer",
            resolution="Check the node (docker node ls) and that its engine listens with TLS "
            "on PARALLAX_SWARM_ENGINE_PORT.",
        ) from exc
