"""The Engine API's system endpoints: the engine's version and what the host offers."""

from __future__ import annotations

from typing import Any

from parallax_docker.backends.docker.engine.client import EngineClient


class System:
    def __init__(self, client: EngineClient) -> None:
        self._client = client

    async def version(self) -> dict[str, Any]:
        return dict(await self._client.json("GET", "version"))

    async def info(self) -> dict[str, Any]:
        return dict(await self._client.json("GET", "info"))
