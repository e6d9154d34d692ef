"""The Engine API's container endpoints, in the engine's own JSON."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from parallax_docker.backends.docker.engine.client import EngineClient


def label_filters(labels: Mapping[str, str], **extra: list[str]) -> str:
    """The ``filters`` query value selecting objects that carry every one of ``labels``."""
    return json.dumps({"label": [f"{k}={v}" for k, v in labels.items()], **extra})


class Containers:
    def __init__(self, client: EngineClient) -> None:
        self._client = client

    async def create(self, name: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """``{"Id": ..., "Warnings": [...]}``."""
        return dict(
            await self._client.json(
                "POST", "containers/create", params={"name": name}, body=dict(config)
            )
        )

    async def inspect(self, container: str) -> dict[str, Any]:
        return dict(await self._client.json("GET", f"containers/{container}/json"))

    async def list(self, filters: str) -> list[dict[str, Any]]:
        found = await self._client.json(
            "GET", "containers/json", params={"all": "1", "filters": filters}
        )
        return list(found or ())

    async def start(self, container: str) -> None:
        # A start that races the engine's shutdown leaves containerd a task the engine never
        # cleans up (Docker 20.10): "task ... already exists" on every later start. A new
        # connection is refused once the shutdown has begun, so the start fails cleanly instead.
        await self._client.json("POST", f"containers/{container}/start", fresh=True)

    async def stop(self, container: str, grace_s: int) -> None:
        # The engine holds the request for the whole grace period: allow for it.
        await self._client.json(
            "POST",
            f"containers/{container}/stop",
            params={"t": str(grace_s)},
            timeout=self._client.timeout(grace_s),
        )

    async def restart(self, container: str, grace_s: int) -> None:
        await self._client.json(
            "POST",
            f"containers/{container}/restart",
            params={"t": str(grace_s)},
            timeout=self._client.timeout(grace_s),
            fresh=True,
        )

    async def kill(self, container: str, signal: str) -> None:
        await self._client.json("POST", f"containers/{container}/kill", params={"signal": signal})

    async def remove(self, container: str) -> None:
        """Remove it, running or not, with its anonymous volumes."""
        await self._client.json(
            "DELETE", f"containers/{container}", params={"force": "1", "v": "1"}
        )

    async def update(self, container: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``{"Warnings": [...]}``."""
        return dict(
            await self._client.json("POST", f"containers/{container}/update", body=dict(body)) or {}
        )

    async def rename(self, container: str, name: str) -> None:
        await self._client.json("POST", f"containers/{container}/rename", params={"name": name})

    async def stat_path(self, container: str, path: str) -> None:
        """Answers when ``path`` is in the container's filesystem (started or not); a 404
        EngineAPIError when it is not."""
        async with self._client.request(
            "HEAD", f"containers/{container}/archive", params={"path": path}
        ):
            return

    async def read_archive(self, container: str, path: str, max_bytes: int) -> bytes:
        """The first ``max_bytes`` of the tar the engine makes of ``path`` (started or not)."""
        async with self._client.request(
            "GET", f"containers/{container}/archive", params={"path": path}
        ) as response:
            return await response.content.read(max_bytes)

    async def logs(self, container: str, params: Mapping[str, str]) -> bytes:
        return await self._client.read("GET", f"containers/{container}/logs", params=params)

    @asynccontextmanager
    async def follow_logs(
        self, container: str, params: Mapping[str, str]
    ) -> AsyncIterator[aiohttp.StreamReader]:
        async with self._client.request(
            "GET",
            f"containers/{container}/logs",
            params={**params, "follow": "1"},
            timeout=self._client.stream_timeout(),
        ) as response:
            yield response.content

    async def stats(self, container: str) -> dict[str, Any]:
        """One sample, without the engine's second one a second later (the caller keeps the
        previous sample to compute rates)."""
        return dict(
            await self._client.json(
                "GET",
                f"containers/{container}/stats",
                params={"stream": "0", "one-shot": "1"},
            )
        )
