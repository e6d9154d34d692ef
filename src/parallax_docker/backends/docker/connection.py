"""One engine connection, shared by the backend and the image builder: made lazily, closed once."""

from __future__ import annotations

import aiodocker
import aiohttp


def timeouts(
    request_timeout_s: float, connect_timeout_s: float
) -> tuple[aiohttp.ClientTimeout, aiohttp.ClientTimeout]:
    """(bounded request timeout, stream timeout): streams run as long as they need, only
    connecting is bounded."""
    request = aiohttp.ClientTimeout(
        total=request_timeout_s, connect=connect_timeout_s, sock_connect=connect_timeout_s
    )
    stream = aiohttp.ClientTimeout(
        total=None, sock_read=None, connect=connect_timeout_s, sock_connect=connect_timeout_s
    )
    return request, stream


class EngineConnection:
    def __init__(self, socket_path: str, timeout: aiohttp.ClientTimeout) -> None:
        self.socket_path = socket_path
        self._url = f"unix://{socket_path}"
        self._timeout = timeout
        self._docker: aiodocker.Docker | None = None

    def client(self) -> aiodocker.Docker:
        # Created on first use so that it binds to the running event loop, not the importer's.
        if self._docker is None:
            self._docker = aiodocker.Docker(url=self._url, timeout=self._timeout)
        return self._docker

    async def close(self) -> None:
        if self._docker is not None:
            await self._docker.close()
            self._docker = None
