"""The Engine API's image endpoints: inspect, build, pull and import, in the engine's JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from parallax_docker.backends.docker.engine.client import EngineClient
from parallax_docker.backends.docker.engine.streams import json_lines


class Images:
    def __init__(self, client: EngineClient) -> None:
        self._client = client

    async def inspect(self, ref: str) -> dict[str, Any]:
        return dict(await self._client.json("GET", f"images/{ref}/json"))

    async def build(
        self, context: bytes, params: Mapping[str, str]
    ) -> AsyncIterator[dict[str, Any]]:
        """Each progress message of a classic build of a gzipped tar ``context``."""
        async with self._client.request(
            "POST",
            "build",
            params=params,
            data=context,
            headers={"Content-Type": "application/x-tar", "Content-Encoding": "gzip"},
            timeout=self._client.stream_timeout(),
        ) as response:
            async for message in json_lines(response.content):
                yield dict(message)

    async def pull(self, name: str, tag: str, total_s: float) -> AsyncIterator[dict[str, Any]]:
        """Each progress message of pulling ``name:tag``; the whole pull bounded by ``total_s``."""
        async with self._client.request(
            "POST",
            "images/create",
            params={"fromImage": name, "tag": tag},
            timeout=self._client.stream_timeout(total_s),
        ) as response:
            async for message in json_lines(response.content):
                yield dict(message)

    async def import_rootfs(
        self, chunks: AsyncIterator[bytes], repo: str, tag: str, changes: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        """The messages of importing a root filesystem tar as ``repo:tag``."""
        # ``changes`` repeats in the query, once per Dockerfile instruction.
        params = [("fromSrc", "-"), ("repo", repo), ("tag", tag)]
        params.extend(("changes", change) for change in changes)
        async with self._client.request(
            "POST",
            "images/create",
            params=params,
            data=chunks,
            headers={"Content-Type": "application/x-tar"},
            timeout=self._client.stream_timeout(),
        ) as response:
            return [dict(message) async for message in json_lines(response.content)]
