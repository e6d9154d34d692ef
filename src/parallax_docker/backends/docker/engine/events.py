"""The Engine API's event stream."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from parallax_docker.backends.docker.engine.client import EngineClient
from parallax_docker.backends.docker.engine.streams import json_lines


class Events:
    def __init__(self, client: EngineClient) -> None:
        self._client = client

    async def stream(self, filters: str, since: str | None = None) -> AsyncGenerator[Any, None]:
        """Each event matching ``filters`` (from ``since``, seconds.nanoseconds), as it comes."""
        params = {"filters": filters} | ({"since": since} if since is not None else {})
        async with self._client.request(
            "GET", "events", params=params, timeout=self._client.stream_timeout()
        ) as response:
            async for event in json_lines(response.content):
                yield event
