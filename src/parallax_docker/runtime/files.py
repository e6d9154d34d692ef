"""Files in and out of running agents: read, list, write (a file or a tar), remove.

Paths are cleaned here (runtime/paths.py) and resolved by the platform inside the agent, which
confines them to its workspace and home (the ``Files`` capability). Uploads are limited in
size and, for archives, checked member by member as they stream (runtime/tarcheck.py); they are
staged next to their place and moved in only once complete, so that a refused, cut or failed
upload changes nothing. An upload is journaled: a crash leaves at most a staged folder, which
recovery removes. Nothing is ever held whole in memory.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import secrets
from collections.abc import AsyncIterator

from parallax_docker.backends.capabilities import DirListing, Files, FileStream
from parallax_docker.config import Settings
from parallax_docker.errors import (
    AgentStateError,
    FilesUnavailableError,
    ParallaxError,
    UploadTooLargeError,
)
from parallax_docker.runtime import lifecycle
from parallax_docker.runtime.engine_link import EngineLink
from parallax_docker.runtime.journal import Intent, Journal
from parallax_docker.runtime.paths import agent_path, split_parent
from parallax_docker.runtime.registry import Registry
from parallax_docker.runtime.tarcheck import checked

log = logging.getLogger(__name__)

LIST_LIMIT_MAX = 10_000
STAGE_PREFIX = ".parallax-upload-"


class FileService:
    def __init__(
        self,
        *,
        settings: Settings,
        files: Files | None,
        registry: Registry,
        engine: EngineLink,
        journal: Journal,
    ) -> None:
        self._files = files
        self._registry = registry
        self._engine = engine
        self._journal = journal
        self.max_upload_bytes = settings.max_upload_bytes
        self.max_download_bytes = settings.max_download_bytes

    def _target(self, agent_id: str) -> tuple[Files, str]:
        """The platform's files and the container of running agent ``agent_id``."""
        self._engine.require()
        record = self._registry.get(agent_id)
        if self._files is None:
            raise FilesUnavailableError(
                "this platform offers no file access to agents",
                resolution="Use a terminal (/ws/agents/{id}/terminal) instead.",
            )
        container_id = record.container_id
        if container_id is None or record.state is None or not record.state.running:
            raise AgentStateError(f"agent {agent_id!r} is not running")
        lifecycle.touched(record)
        return self._files, container_id

    async def read(
        self, agent_id: str, path: str, max_bytes: int | None = None
    ) -> tuple[str, FileStream]:
        """A file's bytes, or a folder as a tar of its contents; with the clean path.
        DownloadTooLargeError above ``max_bytes`` (at most PARALLAX_MAX_DOWNLOAD_BYTES)."""
        files, container_id = self._target(agent_id)
        clean = agent_path(path)
        limit = min(max_bytes or self.max_download_bytes, self.max_download_bytes)
        return clean, await files.open_read(container_id, clean, limit)

    async def list(self, agent_id: str, path: str, limit: int) -> DirListing:
        files, container_id = self._target(agent_id)
        return await files.list_dir(container_id, agent_path(path), min(limit, LIST_LIMIT_MAX))

    async def remove(self, agent_id: str, path: str, *, recursive: bool) -> str:
        files, container_id = self._target(agent_id)
        clean = agent_path(path)
        split_parent(clean)  # never a root itself
        await files.remove(container_id, clean, recursive)
        return clean

    async def write(
        self,
        agent_id: str,
        path: str,
        chunks: AsyncIterator[bytes],
        *,
        archive: bool,
        declared_size: int | None = None,
    ) -> tuple[str, int]:
        """Write ``chunks`` as the file ``path``, or (``archive``) unpack them as a tar into the
        folder ``path``; the clean path and the bytes taken. Nothing changes unless all of it
        arrived and fits."""
        files, container_id = self._target(agent_id)
        clean = agent_path(path)
        if declared_size is not None and declared_size > self.max_upload_bytes:
            raise self._too_large()
        directory, name = (clean, None) if archive else split_parent(clean)
        received = [0]
        body = self._limited(chunks, received)
        if archive:
            body = checked(body)
        stage = STAGE_PREFIX + secrets.token_hex(8)
        intent = self._journal.begin(
            "upload",
            f"{agent_id}.{stage[len(STAGE_PREFIX) :]}",
            container_id=container_id,
            directory=directory,
            stage=stage,
        )
        try:
            await files.stage(container_id, directory, stage, body, name=name)
            self._journal.note(intent, step="staged")
            await files.commit(container_id, directory, stage)
        except BaseException:
            await asyncio.shield(self._undo(files, intent))
            raise
        self._journal.end(intent)
        return clean, received[0]

    async def recover(self, intent: Intent) -> None:
        """Drop what an upload a crash cut short had staged (its container may be gone)."""
        if self._files is not None and intent.container_id is not None:
            try:
                await self._files.discard(
                    intent.container_id, str(intent.data["directory"]), str(intent.data["stage"])
                )
            except ParallaxError as exc:
                # Gone or stopped: nothing staged is left to drop, or it goes with the agent.
                if exc.http_status not in (404, 409):
                    raise
        self._journal.end(intent)

    async def _undo(self, files: Files, intent: Intent) -> None:
        assert intent.container_id is not None
        try:
            await files.discard(
                intent.container_id, str(intent.data["directory"]), str(intent.data["stage"])
            )
        except ParallaxError as exc:
            if exc.http_status not in (404, 409):
                # The engine is away: recovery removes the staged files after the next sync.
                log.warning("could not drop a staged upload (%s); recovery will", exc.code)
                self._journal.release(intent)
                return
        self._journal.end(intent)

    async def _limited(
        self, chunks: AsyncIterator[bytes], received: builtins.list[int]
    ) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            received[0] += len(chunk)
            if received[0] > self.max_upload_bytes:
                raise self._too_large()
            yield chunk

    def _too_large(self) -> UploadTooLargeError:
        return UploadTooLargeError(f"the upload is larger than {self.max_upload_bytes} bytes")
