"""Execution resources: the volumes that agents spawned with one ``executionId`` share.

Each such agent gets the runtime-managed volume ``parallax-exec-<executionId>`` as its home
directory (runtime/spec.py), so the CLIs' login state (``~/.claude``, ``~/.codex``,
``~/.gemini``, ...) written by one agent serves every agent of the execution. The volume, and
any named volume created for a request carrying that executionId, stays until
``DELETE /executions/{id}/resources`` removes it. The removal is journaled: a crash in the
middle of it is finished by recovery.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from parallax_docker.backends.base import Backend
from parallax_docker.errors import (
    ExecutionInUseError,
    ExecutionNotFoundError,
    SocketError,
    VolumeInUseError,
)
from parallax_docker.resources import validate_name
from parallax_docker.runtime.engine_link import EngineLink
from parallax_docker.runtime.journal import Intent, Journal
from parallax_docker.runtime.labels import EXECUTION_LABEL
from parallax_docker.runtime.registry import Registry


class Executions:
    def __init__(
        self,
        *,
        backend: Backend,
        registry: Registry,
        engine: EngineLink,
        journal: Journal,
        selector: Mapping[str, str],
    ) -> None:
        self._backend = backend
        self._registry = registry
        self._engine = engine
        self._journal = journal
        self._selector = dict(selector)

    async def remove_resources(self, execution_id: str) -> list[str]:
        """Remove every volume of the execution; the names removed.

        Refused with 409 ``EXECUTION_IN_USE`` while any agent of the execution exists (running
        or exited: its container still holds the volume), 404 ``EXECUTION_NOT_FOUND`` when
        there is nothing to remove.
        """
        validate_name("executionId", execution_id)
        self._engine.require()
        holders = sorted(r.id for r in self._registry if r.labels.execution_id == execution_id)
        if holders:
            raise ExecutionInUseError(
                f"execution {execution_id!r} still has {len(holders)} agent(s): "
                + ", ".join(holders[:10])
            )
        labels = {**self._selector, EXECUTION_LABEL: execution_id}
        volumes = sorted(v.name for v in await self._backend.list_volumes(labels))
        if not volumes:
            raise ExecutionNotFoundError(f"execution {execution_id!r} has no resources")
        intent = self._journal.begin("execution", execution_id, volumes=volumes)
        try:
            removed = await self._remove(
                execution_id, volumes, lambda: self._journal.note(intent, step="removed")
            )
        except SocketError:
            # Half done, the engine away: recovery finishes it after the next sync.
            self._journal.release(intent)
            raise
        except BaseException:
            self._journal.end(intent)
            raise
        self._journal.end(intent)
        return removed

    async def recover(self, intent: Intent) -> None:
        """Finish a clean-up a crash cut short (unless an agent of the execution is back)."""
        if not any(r.labels.execution_id == intent.key for r in self._registry):
            names = [str(v) for v in intent.data.get("volumes") or ()]
            await self._remove(intent.key, names)
        self._journal.end(intent)

    async def _remove(
        self,
        execution_id: str,
        volumes: list[str],
        each: Callable[[], None] = lambda: None,
    ) -> list[str]:
        removed: list[str] = []
        for name in volumes:
            try:
                await self._backend.remove_volume(name)
            except VolumeInUseError as exc:
                raise ExecutionInUseError(
                    f"volume {name} of execution {execution_id!r} is still in use by a container"
                ) from exc
            removed.append(name)
            each()
        return removed
