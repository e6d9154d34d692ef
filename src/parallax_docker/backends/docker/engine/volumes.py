"""The Engine API's volume endpoints, in the engine's own JSON."""

from __future__ import annotations

from typing import Any

from parallax_docker.backends.docker.engine.client import EngineClient


class Volumes:
    def __init__(self, client: EngineClient) -> None:
        self._client = client

    async def list(self, filters: str) -> list[dict[str, Any]]:
        found = await self._client.json("GET", "volumes", params={"filters": filters}) or {}
        return list(found.get("Volumes") or ())

    async def inspect(self, name: str) -> dict[str, Any]:
        return dict(await self._client.json("GET", f"volumes/{name}"))

    async def remove(self, name: str) -> None:
        """Remove the volume; the engine refuses (409) while a container has it."""
        await self._client.json("DELETE", f"volumes/{name}")
