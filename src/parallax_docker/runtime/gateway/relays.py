"""The gateway's relays: one small container on each agent network, at the alias
``parallax-gateway``, that pipes every connection to the Unix socket the service listens on.

A relay holds no logic and no secret: it is the agents' project base image running a few lines
of Node (``net`` only), hardened like an agent, with the socket's folder mounted read-only. One
per network keeps each network its own (no container bridges two of them) and needs no engine
verb beyond create and start. Relays carry their own label (not the agents' selector, so
the reconciler and the janitor never take them for agents) and outlive a service restart: the
next start adopts them. docs/gateway.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

from parallax_docker.backends.base import Backend, ContainerSpec, MountSpec
from parallax_docker.egress import GATEWAY_ALIAS as ALIAS
from parallax_docker.egress import GATEWAY_PORT as PORT
from parallax_docker.egress import PROXY_PORT
from parallax_docker.errors import ParallaxError

log = logging.getLogger(__name__)

RELAY_LABEL = "parallax.gateway.relay"
NETWORK_LABEL = "parallax.gateway.network"
# A digest of what a relay runs: one of an older definition is replaced, not adopted.
DEFINITION_LABEL = "parallax.gateway.definition"
SOCKET_FOLDER = "/run/parallax-gateway"
SOCKET_NAME = "gateway.sock"
PROXY_SOCKET_NAME = "egress.sock"
_MEMORY_BYTES = 64 * 1024 * 1024
_NANO_CPUS = 500_000_000
_SCRIPT = (
    "const net=require('net');"
    # Each port to its socket: model calls, and the egress proxy.
    f"const P={{{PORT}:'{SOCKET_FOLDER}/{SOCKET_NAME}',"
    f"{PROXY_PORT}:'{SOCKET_FOLDER}/{PROXY_SOCKET_NAME}'}};"
    "for(const [port,path] of Object.entries(P)){"
    "net.createServer({noDelay:true},c=>{"
    # Answers come in several writes (headers, body): Nagle would hold the last one back.
    "c.setNoDelay(true);const u=net.connect(path);"
    # PROXY protocol v1: the gateway learns which container is calling.
    "u.write('PROXY TCP4 '+c.remoteAddress+' '+c.localAddress+' '+c.remotePort+' '"
    "+c.localPort+'\\r\\n');"
    "c.pipe(u);u.pipe(c);"
    "c.on('error',()=>u.destroy());u.on('error',()=>c.destroy());"
    "c.on('close',()=>u.destroy());u.on('close',()=>c.destroy());"
    "}).listen(Number(port),'0.0.0.0');}"
)


def relay_name(instance: str, network: str) -> str:
    return f"parallax-gateway-{instance}-{network}"[:128]


class Relays:
    def __init__(
        self,
        backend: Backend,
        *,
        instance: str,
        image: str,
        socket_folder: Path,
        user: str,
    ) -> None:
        self._backend = backend
        self._instance = instance
        self._image = image
        self._socket_folder = socket_folder
        self._user = user
        self._lock = asyncio.Lock()
        self._ready: set[str] = set()
        self._definition = hashlib.sha256(
            f"{image}\n{user}\n{socket_folder}\n{_SCRIPT}".encode()
        ).hexdigest()[:12]

    def spec(self, network: str) -> ContainerSpec:
        return ContainerSpec(
            name=relay_name(self._instance, network),
            image=self._image,
            labels={
                RELAY_LABEL: self._instance,
                NETWORK_LABEL: network,
                DEFINITION_LABEL: self._definition,
            },
            network=network,
            aliases=(ALIAS,),
            memory_bytes=_MEMORY_BYTES,
            nano_cpus=_NANO_CPUS,
            pids_limit=64,
            entrypoint=("node", "-e", _SCRIPT),
            command=(),
            user=self._user,
            workdir="/",
            mounts=(MountSpec("bind", SOCKET_FOLDER, str(self._socket_folder), read_only=True),),
            stop_timeout_s=2,
        )

    async def ensure(self, network: str, internal: bool = False) -> None:
        """A running relay on ``network`` (adopted, started or made)."""
        if network in self._ready:
            return
        async with self._lock:
            if network in self._ready:
                return
            found = await self._backend.list({RELAY_LABEL: self._instance, NETWORK_LABEL: network})
            for state in found:
                if state.running and state.labels.get(DEFINITION_LABEL) == self._definition:
                    self._ready.add(network)
                    return
                # A stopped relay, or one of an older definition, is replaced.
                await self._backend.remove(state.id)
            container_id = await self._backend.create(self.spec(network))
            try:
                await self._backend.start(container_id)
            except ParallaxError:
                await self._backend.remove(container_id)
                raise
            log.info("gateway relay started", extra={"network": network})
            self._ready.add(network)

    def forget(self, network: str) -> None:
        self._ready.discard(network)

    async def sweep(self, in_use: set[str], default_network: str) -> list[str]:
        """Remove the relays left alone on networks no agent uses (the default network's
        stays), and those networks with them: a relay would otherwise keep its network from
        the janitor's sweep, which removes only empty networks. The networks removed."""
        removed = []
        async with self._lock:
            for state in await self._backend.list({RELAY_LABEL: self._instance}):
                network = state.labels.get(NETWORK_LABEL, "")
                if not network or network == default_network or network in in_use:
                    continue
                info = await self._backend.get_network(network)
                if info is not None and info.containers > 1:
                    continue  # something else is on it (an agent being spawned, say)
                await self._backend.remove(state.id)
                self._ready.discard(network)
                if info is not None:
                    await self._backend.remove_network(network)
                removed.append(network)
        return removed

    async def remove_all(self) -> None:
        """Remove every relay of this instance (a test's clean-up, or the gateway turned off)."""
        for state in await self._backend.list({RELAY_LABEL: self._instance}):
            await self._backend.remove(state.id)
        self._ready.clear()
