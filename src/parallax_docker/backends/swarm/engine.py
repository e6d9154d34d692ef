"""The Swarm manager's endpoints of the Engine API (services, tasks, nodes, secrets) and the
image push, over the project's own engine client (backends/docker/engine/)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from parallax_docker.backends.docker.engine import EngineClient
from parallax_docker.backends.docker.engine.streams import json_lines

# The push endpoint wants credentials even for a registry that asks none: an empty JSON object.
_NO_AUTH = "e30="


def filters(**values: list[str]) -> str:
    return json.dumps(values)


class SwarmAPI:
    def __init__(self, client: EngineClient) -> None:
        self._client = client

    # -- services ---------------------------------------------------------------------------

    async def create_service(self, spec: Mapping[str, Any]) -> str:
        created = await self._client.json("POST", "services/create", body=dict(spec))
        return str(created["ID"])

    async def inspect_service(self, service: str) -> dict[str, Any]:
        return dict(await self._client.json("GET", f"services/{service}"))

    async def services(self, query: str) -> list[dict[str, Any]]:
        return list(await self._client.json("GET", "services", params={"filters": query}) or ())

    async def update_service(
        self, service: str, version: int, spec: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``{"Warnings": [...]}``; refused when ``version`` is no longer the service's."""
        answer = await self._client.json(
            "POST",
            f"services/{service}/update",
            params={"version": str(version)},
            body=dict(spec),
        )
        return dict(answer or {})

    async def remove_service(self, service: str) -> None:
        await self._client.json("DELETE", f"services/{service}")

    # -- tasks and nodes --------------------------------------------------------------------

    async def tasks(self, query: str) -> list[dict[str, Any]]:
        return list(await self._client.json("GET", "tasks", params={"filters": query}) or ())

    async def nodes(self) -> list[dict[str, Any]]:
        return list(await self._client.json("GET", "nodes") or ())

    async def info(self) -> dict[str, Any]:
        return dict(await self._client.json("GET", "info"))

    # -- secrets ----------------------------------------------------------------------------

    async def create_secret(self, name: str, data: str, labels: Mapping[str, str]) -> str:
        """A secret holding ``data`` (base64); its id."""
        body = {"Name": name, "Data": data, "Labels": dict(labels)}
        created = await self._client.json("POST", "secrets/create", body=body)
        return str(created["ID"])

    async def secrets(self, query: str) -> list[dict[str, Any]]:
        return list(await self._client.json("GET", "secrets", params={"filters": query}) or ())

    async def remove_secret(self, secret: str) -> None:
        await self._client.json("DELETE", f"secrets/{secret}")

    # -- images -----------------------------------------------------------------------------

    async def tag_image(self, image: str, repo: str, tag: str) -> None:
        await self._client.json("POST", f"images/{image}/tag", params={"repo": repo, "tag": tag})

    async def push_image(self, name: str, tag: str, total_s: float) -> AsyncIterator[Any]:
        """Each progress message of pushing ``name:tag``; the whole push bounded by ``total_s``."""
        async with self._client.request(
            "POST",
            f"images/{name}/push",
            params={"tag": tag},
            headers={"X-Registry-Auth": _NO_AUTH},
            timeout=self._client.stream_timeout(total_s),
        ) as response:
            async for message in json_lines(response.content):
                yield message
