"""Recovery: settle the operations a crash (of the service or of the engine) cut short.

After every sync with the engine, and on each janitor pass, the journal's orphans are taken
over, each by the rule for its kind (docs/reliability.md):
- spawn: finished when it can be (the container is started and must become ready in the usual
  time); else, or when its caller was already told it failed, removed, with ``agent_stopped``
  (reason ``spawn_interrupted``) saying why. A pooled container whose claim was not complete is
  removed: its agent never ran.
- stop: finished (the caller asked for the agent to go); ``agent_stopped`` with its reason.
- restart: finished (started if need be, then readiness), else the agent shows how it is.
- execution clean-up and turns: their owners' handlers (``handlers``).
An orphan the engine is still away for is released and taken again after the next sync.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

from parallax_docker.backends.base import Backend
from parallax_docker.backends.capabilities import SecretDelivery, WarmStart
from parallax_docker.config import Settings
from parallax_docker.errors import ParallaxError, SocketError
from parallax_docker.runtime import lifecycle
from parallax_docker.runtime.agent_record import AgentRecord
from parallax_docker.runtime.events import Publisher
from parallax_docker.runtime.image_lookup import require_image
from parallax_docker.runtime.journal import Intent, Journal, Kind
from parallax_docker.runtime.labels import AgentLabels
from parallax_docker.runtime.lifecycle import Events
from parallax_docker.runtime.loops import Tasks, describe
from parallax_docker.runtime.operations import Operations
from parallax_docker.runtime.pool.claims import ClaimStore
from parallax_docker.runtime.pool.fit import POOL_SLOT
from parallax_docker.runtime.readiness import Readiness
from parallax_docker.runtime.registry import Registry

log = logging.getLogger(__name__)

Handler = Callable[[Intent], Awaitable[None]]
SPAWN_INTERRUPTED = "spawn_interrupted"


class Recovery:
    def __init__(
        self,
        *,
        settings: Settings,
        backend: Backend,
        secrets: SecretDelivery,
        registry: Registry,
        journal: Journal,
        publisher: Publisher,
        operations: Operations,
        claims: ClaimStore,
        warm: WarmStart | None,
        readiness: Readiness,
    ) -> None:
        self._settings = settings
        self._backend = backend
        self._secrets = secrets
        self._registry = registry
        self._journal = journal
        self._publisher = publisher
        self._operations = operations
        self._claims = claims
        self._warm = warm
        self._readiness = readiness
        self._tasks = Tasks()
        self.handlers: dict[Kind, Handler] = {
            "spawn": self._spawn,
            "stop": self._stop,
            "restart": self._restart,
        }

    def take_orphans(self) -> int:
        """Take every orphan over (no await: called where no request may run in between)."""
        taken = 0
        for intent in self._journal.orphans():
            handler = self.handlers.get(intent.kind)
            if handler is None or not self._journal.claim(intent):
                continue
            record = self._registry.find(intent.key) if intent.kind != "execution" else None
            if record is None and intent.kind == "spawn":
                # Nothing on the engine carries the agent's labels yet (no container, or a
                # pooled one whose claim was cut short): hold its id and name until settled,
                # so that a retried spawn waits for this instead of racing it.
                record = self._hold(intent)
            if record is not None and intent.kind in ("spawn", "restart"):
                lifecycle.recovery_begun(record)
            elif record is not None and intent.kind == "stop":
                lifecycle.stop_begun(record)
            self._tasks.spawn(self._settle(handler, intent), name=f"recover-{intent.name}")
            taken += 1
        if taken:
            log.info("recovering %d operation(s) left unfinished", taken)
        return taken

    def _hold(self, intent: Intent) -> AgentRecord | None:
        labels = AgentLabels.decode(intent.data.get("labels") or {})
        if labels is None:
            return None
        record = lifecycle.adopted(labels)
        self._registry.put(record)
        return record

    async def wait(self) -> None:
        """Until every recovery under way has ended (tests, shutdown)."""
        await self._tasks.wait()

    async def stop(self) -> None:
        await self._tasks.stop()

    async def _settle(self, handler: Handler, intent: Intent) -> None:
        try:
            await handler(intent)
        except SocketError:
            # The engine is away again: the next sync takes it over anew.
            self._journal.release(intent)
        except Exception as exc:
            log.warning("could not recover %s: %s", intent.name, describe(exc))
            self._journal.release(intent)

    # -- spawn ------------------------------------------------------------------------------

    async def _spawn(self, intent: Intent) -> None:
        record = self._registry.find(intent.key)
        if record is None or record.container_id is None:
            await self._discard_leftover(intent)
            if record is not None:
                self._registry.drop(record.id)
                self._publisher.publish(
                    lifecycle.recovered_away(
                        record,
                        SPAWN_INTERRUPTED,
                        "the spawn was cut short before its container ran as the agent",
                    )
                )
            self._journal.end(intent)
            return
        container_id = record.container_id
        pending_claim = intent.data.get("pooled") and self._claims.labels(container_id) is None
        if intent.data.get("undo") or pending_claim:
            await self._remove(record, intent, "the spawn failed and was undone")
            return
        try:
            ready = await self._bring_to_ready(record, container_id)
        except SocketError:
            raise
        except ParallaxError as exc:
            await self._remove(record, intent, exc.message)
            return
        self._publisher.publish(ready)
        self._journal.end(intent)
        log.info("finished an interrupted spawn", extra={"agent_id": record.id})

    async def _bring_to_ready(self, record: AgentRecord, container_id: str) -> Events:
        """Start the container if need be and wait until it is ready: ``agent_ready``."""
        image = await require_image(
            self._backend, record.labels.image, record.labels.type, self._settings.image_prefix
        )
        current = await self._backend.get(container_id)
        if current is not None and not current.running:
            await self._backend.start(container_id)
        state = await self._readiness.wait(
            container_id, image, record.id, timeout_s=self._settings.ready_timeout_s
        )
        beating = self._readiness.beating(image)
        return lifecycle.became_ready(record, state, heartbeat=beating, recovered=True)

    async def _remove(self, record: AgentRecord, intent: Intent, why: str) -> None:
        await self._discard_leftover(intent, record.container_id)
        with contextlib.suppress(OSError):
            self._secrets.remove(record.id)
        self._registry.drop(record.id)
        self._operations.tombstones.forget(record.id)
        self._publisher.publish(lifecycle.recovered_away(record, SPAWN_INTERRUPTED, why))
        self._journal.end(intent)
        log.info("removed an interrupted spawn: %s", why, extra={"agent_id": record.id})

    async def _discard_leftover(self, intent: Intent, container_id: str | None = None) -> None:
        """Remove the container the spawn made (a pooled one through the warm pool)."""
        container_id = container_id or intent.container_id
        if container_id is not None:
            state = await self._backend.get(container_id)
            slot = state.labels.get(POOL_SLOT) if state is not None else None
            if slot and self._warm is not None:
                await self._warm.discard(container_id, slot, intent.key)
            else:
                await self._backend.remove(container_id)
            self._claims.drop(container_id)
        with contextlib.suppress(OSError):
            self._secrets.remove(intent.key)

    # -- stop and restart -------------------------------------------------------------------

    async def _stop(self, intent: Intent) -> None:
        record = self._registry.find(intent.key)
        reason = str(intent.data.get("reason") or "deleted")
        if record is None:
            # The container went while the service was away; say so once.
            if intent.container_id is not None:
                await self._backend.remove(intent.container_id)
            labels = AgentLabels.decode(intent.data.get("labels") or {})
            if labels is not None:
                ghost = lifecycle.adopted(labels)
                self._publisher.publish(lifecycle.stopped(ghost, None, reason, recovered=True))
            self._operations.tombstones.add(intent.key)
            self._journal.end(intent)
            return
        final = await self._operations.take_down(
            record.container_id,
            force=bool(intent.data.get("force")),
            grace_s=self._settings.stop_grace_s,
        )
        self._operations.finish_stop(record, final, reason)
        self._journal.end(intent)

    async def _restart(self, intent: Intent) -> None:
        record = self._registry.find(intent.key)
        if record is None or record.container_id is None:
            self._journal.end(intent)
            return
        try:
            ready = await self._bring_to_ready(record, record.container_id)
        except SocketError:
            raise
        except ParallaxError:
            current = await self._backend.get(record.container_id)
            self._publisher.publish(lifecycle.bring_back_failed(record, current))
            self._journal.end(intent)
            return
        self._publisher.publish(ready)
        self._journal.end(intent)
