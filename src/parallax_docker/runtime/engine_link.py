"""Whether the engine is reachable, and the networks agents join.

Writes are refused until the registry is in sync with the engine (``ready``): a spawn before
that could take the name of an agent not yet adopted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from parallax_docker.backends.base import Backend, EngineInfo
from parallax_docker.errors import NetworkForbiddenError, SocketError
from parallax_docker.runtime.labels import MANAGED


class EngineLink:
    def __init__(self, backend: Backend, default_network: str, selector: Mapping[str, str]) -> None:
        self._backend = backend
        self._default_network = default_network
        self._selector = dict(selector)
        self._lock = asyncio.Lock()
        self._networks_ready: set[str] = set()
        self.info: EngineInfo | None = None
        self._joiners: list[Callable[[str, bool], Awaitable[None]]] = []

    def on_network(self, joiner: Callable[[str, bool], Awaitable[None]]) -> None:
        """Call ``joiner(name, internal)`` once a network is ready, before any agent joins it
        (the model gateway puts its relay there)."""
        self._joiners.append(joiner)

    @property
    def up(self) -> bool:
        return self.info is not None

    def require(self) -> EngineInfo:
        if self.info is None:
            raise SocketError("the Docker engine is not reachable")
        return self.info

    async def connect(self) -> EngineInfo:
        """Reach the engine and make the default network; SocketError if it is down."""
        info = await self._backend.ping()
        self._networks_ready.clear()
        await self.ensure_network(self._default_network, internal=False)
        return info

    def ready(self, info: EngineInfo) -> None:
        self.info = info

    def lost(self) -> None:
        self.info = None

    def forget_network(self, name: str) -> None:
        """A network was removed: the next agent on it makes it (and its joiners) again."""
        self._networks_ready.discard(name)

    async def ensure_network(self, name: str, internal: bool) -> None:
        if name in self._networks_ready:
            return
        async with self._lock:
            if name in self._networks_ready:
                return
            labels = await self._backend.ensure_network(name, self._selector, internal=internal)
            # The default network may be made by hand, as the spec shows; any other network an
            # agent joins must be the runtime's, or the agent could be put next to containers
            # that are not agents.
            if name != self._default_network and labels.get(MANAGED) != "true":
                raise NetworkForbiddenError(
                    f"network {name!r} exists but is not managed by the runtime",
                    resolution="Choose a new network name; the runtime creates and labels it.",
                )
            for joiner in self._joiners:
                await joiner(name, internal)
            self._networks_ready.add(name)
