"""Spawn: a validated request becomes a ready agent, or nothing at all.

The id and name are reserved and the spawn is written to the journal before the first engine
call. A warm pooled container serves the spawn when one fits (runtime/pool/); otherwise the
container is made cold: create, start, readiness. Any failure removes what was made (shielded
from a caller that hangs up); when even that fails (the engine went away), the agent stays
reserved and recovery finishes the clean-up after the next sync, so that no other spawn can take
the name meanwhile. A retried spawn with the same id and body joins the first one and answers
with its agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from parallax_docker.backends.base import Backend, ContainerState
from parallax_docker.backends.capabilities import SecretDelivery
from parallax_docker.config import Settings
from parallax_docker.errors import AgentStateError, ParallaxError
from parallax_docker.models import AgentHandle, SpawnRequest
from parallax_docker.runtime import lifecycle
from parallax_docker.runtime.admission import Admission, committed
from parallax_docker.runtime.agent_record import AgentRecord
from parallax_docker.runtime.engine_link import EngineLink
from parallax_docker.runtime.events import Publisher
from parallax_docker.runtime.image_lookup import require_image
from parallax_docker.runtime.journal import Intent, Journal
from parallax_docker.runtime.pool.pool import WarmPool
from parallax_docker.runtime.readiness import Readiness
from parallax_docker.runtime.registry import Registry
from parallax_docker.runtime.spec import PlannedAgent, container_spec, plan_agent
from parallax_docker.runtime.telemetry import Telemetry
from parallax_docker.runtime.unprivileged import UserLookup
from parallax_docker.runtime.volumes import check_named_volumes
from parallax_docker.security import check_runtime_available

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reservation:
    """An admitted spawn whose id and name are taken and whose intent is written."""

    record: AgentRecord
    plan: PlannedAgent
    intent: Intent


class Spawner:
    def __init__(
        self,
        *,
        settings: Settings,
        backend: Backend,
        secrets: SecretDelivery,
        registry: Registry,
        engine: EngineLink,
        publisher: Publisher,
        journal: Journal,
        telemetry: Telemetry,
        pool: WarmPool | None,
        users: UserLookup,
        on_ready: Callable[[AgentRecord, str], Awaitable[None]] | None = None,
        admission: Admission,
        readiness: Readiness,
    ) -> None:
        self._settings = settings
        self._backend = backend
        self._secrets = secrets
        self._registry = registry
        self._engine = engine
        self._publisher = publisher
        self._journal = journal
        self._telemetry = telemetry
        self._pool = pool
        self._users = users
        # Called with the record and container once the agent is up, before it is ready (the
        # workspace's snapshot at spawn, runtime/workspace.py).
        self._on_ready = on_ready
        self._admission = admission
        self._readiness = readiness

    async def spawn(self, request: SpawnRequest) -> AgentHandle:
        plan = self.plan(request)
        while request.id is not None:
            existing = self._registry.find(plan.labels.id)
            if existing is None or existing.labels.spec_hash != plan.labels.spec_hash:
                break  # a different body under a taken id: the reservation refuses it
            handle = await self._join(existing)
            if handle is not None:
                return handle
        return await self.complete(self.reserve(plan))

    def plan(
        self, request: SpawnRequest, thread_labels: Mapping[str, str] | None = None
    ) -> PlannedAgent:
        """Check the request against every rule that needs no engine call (SOCKET_ERROR while
        the engine is away)."""
        engine = self._engine.require()
        return plan_agent(
            request,
            self._settings,
            host_memory=engine.memory_bytes,
            host_cpus=engine.cpus,
            thread_labels=thread_labels,
        )

    def reserve(self, plan: PlannedAgent) -> Reservation:
        """Admit the agent, take its id and name, and write the spawn's intent (no await: a
        caller may answer once this returns and leave the rest to ``complete``)."""
        engine = self._engine.require()
        # No await between the capacity check and the reservation: two spawns cannot both
        # take the last of the host.
        self._admission.admit(
            plan.labels.memory_bytes, plan.labels.nano_cpus, committed(self._registry), engine
        )
        record = self._registry.reserve(plan.labels)
        intent = self._journal.begin("spawn", record.id, labels=plan.labels.encode())
        return Reservation(record, plan, intent)

    async def complete(self, reservation: Reservation) -> AgentHandle:
        """Make the reserved agent's container and wait until it is ready; undo on failure."""
        record, plan, intent = reservation.record, reservation.plan, reservation.intent
        started = time.monotonic()
        try:
            state, beating = await self._pooled(record, plan, intent) or await self._cold(
                record, plan, intent
            )
            if self._on_ready is not None:
                await self._on_ready(record, state.id)
        except BaseException as exc:
            self._telemetry.spawn_finished(record.labels.type, time.monotonic() - started, exc)
            await asyncio.shield(self._abandon(record, intent))
            raise
        self._publisher.publish(lifecycle.became_ready(record, state, heartbeat=beating))
        self._journal.end(intent)
        seconds = time.monotonic() - started
        self._telemetry.spawn_finished(record.labels.type, seconds, None)
        log.info(
            "agent spawned",
            extra={"agent_id": record.id, "type": record.labels.type, "seconds": round(seconds, 3)},
        )
        return record.handle()

    async def _join(self, record: AgentRecord) -> AgentHandle | None:
        """The agent of an earlier spawn with this id and body, once it has settled; None when
        that spawn left nothing (this one then starts afresh)."""
        await record.settled.wait()
        current = self._registry.find(record.id)
        if current is None:
            return None
        if current is not record:
            return None  # another spawn took the id meanwhile: look again
        if current.stopping:
            raise AgentStateError(f"agent {record.id!r} is being stopped")
        return current.handle()

    # -- the two ways to an agent -----------------------------------------------------------

    async def _pooled(
        self, record: AgentRecord, plan: PlannedAgent, intent: Intent
    ) -> tuple[ContainerState, bool] | None:
        """The agent's ready state, and whether it beats a heartbeat; None: it starts cold."""
        slot = self._pool.take(plan) if self._pool is not None else None
        if self._pool is None or slot is None:
            return None
        self._journal.note(intent, step="taken", container_id=slot.container_id, pooled=True)
        try:
            state = await self._pool.claim(
                slot,
                plan,
                on_started=lambda: self._publisher.publish(lifecycle.container_started(record)),
                progress=lambda step: self._journal.note(intent, step=step),
            )
        except Exception as exc:
            # The pooled container is gone; a cold start still serves the request.
            log.warning(
                "claim from the warm pool failed, starting cold: %s",
                exc.code if isinstance(exc, ParallaxError) else type(exc).__name__,
                extra={"agent_id": record.id},
            )
            self._journal.note(intent, pooled=False)
            intent.container_id = None
            return None
        return state, self._readiness.beating(slot.image)

    async def _cold(
        self, record: AgentRecord, plan: PlannedAgent, intent: Intent
    ) -> tuple[ContainerState, bool]:
        image = await require_image(
            self._backend, plan.image, record.labels.type, self._settings.image_prefix
        )
        # Everything that can refuse the spawn comes before the first thing it makes.
        check_runtime_available(plan.runtime, self._engine.require().runtimes)
        await check_named_volumes(self._backend, plan.mounts)
        run_as = self._users.plan(image)
        delivery = self._secrets.deliver(
            record.id,
            plan.env,
            image,
            image_ref=plan.image,
            command=plan.command,
            uid=run_as.known_uid,
        )
        if not plan.network.is_none:
            await self._engine.ensure_network(plan.network.name, plan.network.internal)
        heartbeat = self._readiness.attach(record.id, image)
        spec = container_spec(plan, image, self._settings, delivery, run_as, heartbeat)
        container_id = await self._users.create(spec, run_as, image)
        self._journal.note(intent, step="created", container_id=container_id)
        await self._backend.start(container_id)
        self._journal.note(intent, step="started")
        self._publisher.publish(lifecycle.container_started(record))
        state = await self._readiness.wait(
            container_id, image, record.id, timeout_s=self._settings.ready_timeout_s
        )
        return state, heartbeat is not None

    # -- failure ----------------------------------------------------------------------------

    async def abandon(self, reservation: Reservation) -> None:
        """Give up a reservation whose ``complete`` never ran (the caller changed its mind)."""
        await self._abandon(reservation.record, reservation.intent)

    async def _abandon(self, record: AgentRecord, intent: Intent) -> None:
        """Remove what the failed spawn made; leave it to recovery when that fails too."""
        container_id = intent.container_id
        if container_id is not None and not intent.data.get("pooled"):
            try:
                await self._backend.remove(container_id)
            except ParallaxError as exc:
                # The record stays reserved (and unsettled) until recovery has removed it.
                log.warning(
                    "could not remove the container of a failed spawn (%s); recovery will",
                    exc.code,
                    extra={"agent_id": record.id},
                )
                # The caller is told the spawn failed: recovery undoes it, never finishes it.
                self._journal.note(intent, undo=True)
                self._journal.release(intent)
                return
        with contextlib.suppress(OSError):
            self._secrets.remove(record.id)
        lifecycle.spawn_abandoned(record)
        self._registry.drop(record.id)
        self._journal.end(intent)
