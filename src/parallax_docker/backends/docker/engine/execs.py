"""The Engine API's exec endpoints: create, start on a hijacked connection, inspect, resize."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from parallax_docker.backends.docker.engine.client import EngineClient
from parallax_docker.backends.docker.engine.tls_stream import RawWriter


class Execs:
    def __init__(self, client: EngineClient) -> None:
        self._client = client

    async def create(
        self,
        container: str,
        argv: tuple[str, ...],
        *,
        stdin: bool,
        tty: bool,
        env: Mapping[str, str],
        user: str | None,
        workdir: str | None,
    ) -> str:
        """The new exec instance's id (nothing runs until ``start``)."""
        body: dict[str, Any] = {
            "Cmd": list(argv),
            "AttachStdin": stdin,
            "AttachStdout": True,
            "AttachStderr": True,
            "Tty": tty,
            "User": user or "",
        }
        if env:
            body["Env"] = [f"{key}={value}" for key, value in env.items()]
        if workdir:
            body["WorkingDir"] = workdir
        created = await self._client.json("POST", f"containers/{container}/exec", body=body)
        return str(created["Id"])

    async def start(self, exec_id: str, *, tty: bool) -> tuple[asyncio.StreamReader, RawWriter]:
        """Start it; the connection then carries its stdin one way and its output the other."""
        return await self._client.hijack(f"exec/{exec_id}/start", {"Detach": False, "Tty": tty})

    async def inspect(self, exec_id: str) -> dict[str, Any]:
        return dict(await self._client.json("GET", f"exec/{exec_id}/json"))

    async def resize(self, exec_id: str, cols: int, rows: int) -> None:
        await self._client.json(
            "POST", f"exec/{exec_id}/resize", params={"h": str(rows), "w": str(cols)}
        )
