"""The Engine API's network endpoints, in the engine's own JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from parallax_docker.backends.docker.engine.client import EngineClient


class Networks:
    def __init__(self, client: EngineClient) -> None:
        self._client = client

    async def list(self, filters: str) -> list[dict[str, Any]]:
        """Networks matching ``filters``; the list leaves each one's Containers empty."""
        return list(await self._client.json("GET", "networks", params={"filters": filters}) or ())

    async def find(self, name: str) -> dict[str, Any] | None:
        """The network called exactly ``name`` (its id or a prefix of it does not count)."""
        for network in await self.list(json.dumps({"name": [name]})):
            if network.get("Name") == name:
                return network
        return None

    async def inspect(self, network: str) -> dict[str, Any]:
        return dict(await self._client.json("GET", f"networks/{network}"))

    async def create(self, body: Mapping[str, Any]) -> None:
        await self._client.json("POST", "networks/create", body=dict(body))

    async def remove(self, network: str) -> None:
        await self._client.json("DELETE", f"networks/{network}")

    async def connect(self, network: str, container: str, aliases: tuple[str, ...]) -> None:
        body = {"Container": container, "EndpointConfig": {"Aliases": list(aliases)}}
        await self._client.json("POST", f"networks/{network}/connect", body=body)

    async def disconnect(self, network: str, container: str) -> None:
        body = {"Container": container, "Force": True}
        await self._client.json("POST", f"networks/{network}/disconnect", body=body)
