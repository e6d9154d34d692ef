"""Reading one small file out of a container (created or running) through the archive API."""

from __future__ import annotations

import io
import tarfile

import aiodocker
import aiohttp

from parallax_docker.backends.docker.errors import engine_call


async def read_file(
    docker: aiodocker.Docker,
    container_id: str,
    path: str,
    *,
    max_bytes: int,
    timeout: aiohttp.ClientTimeout,
) -> bytes | None:
    """The regular file at ``path`` (at most ``max_bytes``), or None when it is not one."""
    async with engine_call("container", container_id[:12]):
        try:
            async with docker._query(
                f"containers/{container_id}/archive", params={"path": path}, timeout=timeout
            ) as response:
                # A tar of the one file: its header, the content, padding and the end blocks.
                raw = await response.content.read(max_bytes + 4096)
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return None
            raise
    try:
        with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
            member = archive.next()
            if member is None or not member.isreg() or member.size > max_bytes:
                return None
            extracted = archive.extractfile(member)
            return extracted.read() if extracted is not None else None
    except tarfile.TarError:
        return None
