"""Files in an agent on any node (the Files capability): the one-host helper (docker/
agent_files.py), run by exec on the node's own engine over mutual TLS, as the agent's user.

An upload ends its stdin with TLS's close_notify (engine/tls_stream.py), which the node's
engine takes for the end of the stream as it takes a Unix socket's half-close."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from parallax_docker.backends.capabilities import DirListing, FileStream
from parallax_docker.backends.docker.agent_files import DockerFiles
from parallax_docker.backends.swarm.nodes import on_node
from parallax_docker.backends.swarm.readings import Readings


class SwarmFiles:
    def __init__(self, readings: Readings) -> None:
        self._readings = readings

    @asynccontextmanager
    async def _on_node(self, service_id: str) -> AsyncIterator[tuple[DockerFiles, str]]:
        """The helper on the agent's node, and its container there."""
        node, engine, placed = await self._readings.placed(service_id)
        async with on_node(node):
            yield DockerFiles(engine), placed

    async def open_read(self, container_id: str, path: str, max_bytes: int) -> FileStream:
        async with self._on_node(container_id) as (files, placed):
            return await files.open_read(placed, path, max_bytes)

    async def list_dir(self, container_id: str, path: str, limit: int) -> DirListing:
        async with self._on_node(container_id) as (files, placed):
            return await files.list_dir(placed, path, limit)

    async def stage(
        self,
        container_id: str,
        directory: str,
        stage: str,
        chunks: AsyncIterator[bytes],
        *,
        name: str | None = None,
    ) -> None:
        async with self._on_node(container_id) as (files, placed):
            await files.stage(placed, directory, stage, chunks, name=name)

    async def commit(self, container_id: str, directory: str, stage: str) -> None:
        async with self._on_node(container_id) as (files, placed):
            await files.commit(placed, directory, stage)

    async def discard(self, container_id: str, directory: str, stage: str) -> None:
        async with self._on_node(container_id) as (files, placed):
            await files.discard(placed, directory, stage)

    async def remove(self, container_id: str, path: str, recursive: bool) -> None:
        async with self._on_node(container_id) as (files, placed):
            await files.remove(placed, path, recursive)
