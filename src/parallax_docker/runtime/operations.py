"""Operations on existing agents: stop, restart (by request or after a crash), removal, probes.

Each multi-step operation is written to the journal before its first engine call. A stop the
engine cut short (it went away) is left to recovery, which finishes it after the next sync: the
caller asked for the agent to go. A stop joins one already under way, and a retried stop of an
agent that is gone already succeeds (``Tombstones``), so that a caller whose connection broke
can simply ask again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from parallax_docker.backends.base import Backend, ContainerState
from parallax_docker.backends.capabilities import SecretDelivery
from parallax_docker.config import Settings
from parallax_docker.errors import AgentNotFoundError, AgentStateError, ParallaxError, SocketError
from parallax_docker.models import AgentHandle
from parallax_docker.runtime import lifecycle
from parallax_docker.runtime.agent_record import AgentRecord
from parallax_docker.runtime.engine_link import EngineLink
from parallax_docker.runtime.events import Publisher, RuntimeEvent
from parallax_docker.runtime.image_lookup import require_image
from parallax_docker.runtime.journal import Intent, Journal
from parallax_docker.runtime.metrics import MetricsSampler
from parallax_docker.runtime.readiness import Readiness
from parallax_docker.runtime.registry import Registry
from parallax_docker.runtime.telemetry import Telemetry

log = logging.getLogger(__name__)
# Agents stopped at once when the service takes them all along on exit.
_STOP_ALL_AT_ONCE = 8

# How long a stopped agent's id answers a repeated stop with success.
TOMBSTONE_S = 600.0


class Tombstones:
    """Ids of agents stopped a short while ago: by this process (in memory), or by an earlier
    one (its ``agent_stopped`` event in the kept history)."""

    def __init__(
        self,
        history: Callable[[str], Awaitable[list[RuntimeEvent]]] | None = None,
        keep_s: float = TOMBSTONE_S,
    ) -> None:
        self._history = history
        self._keep_s = keep_s
        self._at: dict[str, float] = {}

    def add(self, agent_id: str) -> None:
        now = time.monotonic()
        self._at = {k: t for k, t in self._at.items() if now - t < self._keep_s}
        self._at[agent_id] = now

    def recent(self, agent_id: str) -> bool:
        at = self._at.get(agent_id)
        return at is not None and time.monotonic() - at < self._keep_s

    async def stopped_recently(self, agent_id: str) -> bool:
        if self.recent(agent_id):
            return True
        if self._history is None:
            return False
        events = await self._history(agent_id)
        return any(
            e.event == "agent_stopped" and time.time() - e.timestamp < self._keep_s for e in events
        )

    def forget(self, agent_id: str) -> None:
        self._at.pop(agent_id, None)


class Operations:
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
        sampler: MetricsSampler,
        readiness: Readiness,
        history: Callable[[str], Awaitable[list[RuntimeEvent]]] | None = None,
    ) -> None:
        self._settings = settings
        self._backend = backend
        self._secrets = secrets
        self._registry = registry
        self._engine = engine
        self._publisher = publisher
        self._journal = journal
        self._telemetry = telemetry
        self._sampler = sampler
        self._readiness = readiness
        self.tombstones = Tombstones(history)
        self._stops: dict[str, asyncio.Future[None]] = {}

    # -- stop -------------------------------------------------------------------------------

    async def stop(
        self,
        agent_id: str,
        *,
        force: bool = False,
        timeout_s: float | None = None,
        reason: str = "deleted",
    ) -> None:
        """Graceful stop (SIGTERM, then SIGKILL after the grace period), then remove."""
        self._engine.require()
        record = self._registry.find(agent_id)
        if record is None:
            if await self.tombstones.stopped_recently(agent_id):
                return
            raise AgentNotFoundError(f"agent {agent_id[:80]!r} does not exist")
        under_way = self._stops.get(agent_id)
        if under_way is not None:
            await asyncio.shield(under_way)
            return
        if record.transitioning:
            raise AgentStateError(f"agent {agent_id!r} is being spawned or restarted")
        if record.stopping:
            raise AgentStateError(f"agent {agent_id!r} is already being stopped")
        grace = self._settings.stop_grace_s if timeout_s is None else timeout_s
        lifecycle.stop_begun(record)
        intent = self._journal.begin(
            "stop",
            agent_id,
            container_id=record.container_id,
            reason=reason,
            force=force,
            labels=record.labels.encode(),
        )
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stops[agent_id] = done
        try:
            await self._stop(record, intent, force=force, grace_s=grace)
        except BaseException as exc:
            if isinstance(exc, Exception):
                done.set_exception(exc)
                done.exception()  # retrieved here: there may be no joiner to see it
            else:
                done.cancel()
            raise
        else:
            done.set_result(None)
        finally:
            self._stops.pop(agent_id, None)

    async def _stop(
        self, record: AgentRecord, intent: Intent, *, force: bool, grace_s: float
    ) -> None:
        container_id = record.container_id
        started = time.monotonic()
        try:
            final = await self.take_down(
                container_id,
                force=force,
                grace_s=grace_s,
                stopped=lambda: self._journal.note(intent, step="stopped"),
            )
        except BaseException as exc:
            self._telemetry.stop_finished(time.monotonic() - started, exc)
            if isinstance(exc, SocketError):
                # The engine is away: the stop stands and recovery finishes it.
                self._journal.release(intent)
                raise
            current = None
            if container_id is not None and isinstance(exc, Exception):
                with contextlib.suppress(ParallaxError):
                    current = await asyncio.shield(self._backend.get(container_id))
            lifecycle.stop_failed(record, current)
            self._journal.end(intent)
            raise
        self._telemetry.stop_finished(time.monotonic() - started, None)
        self.finish_stop(record, final, str(intent.data.get("reason") or "deleted"))
        self._journal.end(intent)

    async def take_down(
        self,
        container_id: str | None,
        *,
        force: bool,
        grace_s: float,
        stopped: Callable[[], None] = lambda: None,
    ) -> ContainerState | None:
        """Stop (or kill) and remove a container; its last state."""
        if container_id is None:
            return None
        if force:
            await self._backend.kill(container_id)
        else:
            await self._backend.stop(container_id, grace_s)
        stopped()
        final = await self._backend.get(container_id)
        await self._backend.remove(container_id)
        return final

    def finish_stop(self, record: AgentRecord, final: ContainerState | None, reason: str) -> None:
        events = lifecycle.stopped(record, final, reason)
        self._forget(record.id)
        self.tombstones.add(record.id)
        self._publisher.publish(events)

    async def stop_all(self, reason: str) -> None:
        """Stop every agent (the service is going away and was told to take them along)."""
        if not self._engine.up:
            return
        ids = [r.id for r in self._registry if not r.in_operation]
        # A few at a time: hundreds of removals at once can deadlock Docker 20.10's libnetwork.
        gate = asyncio.Semaphore(_STOP_ALL_AT_ONCE)

        async def stop_one(agent_id: str) -> None:
            async with gate:
                await self.stop(agent_id, reason=reason)

        results = await asyncio.gather(*(stop_one(i) for i in ids), return_exceptions=True)
        failed = [i for i, r in zip(ids, results, strict=True) if isinstance(r, BaseException)]
        if failed:
            log.warning("could not stop %d agent(s) on exit: %s", len(failed), failed[:10])

    # -- restart ----------------------------------------------------------------------------

    async def restart(self, agent_id: str) -> AgentHandle:
        self._engine.require()
        record = self._registry.get(agent_id)
        if record.container_id is None or record.in_operation:
            raise AgentStateError(f"agent {agent_id!r} is being spawned, restarted or stopped")
        await self.bring_back(record, restart=True, automatic=False)
        return record.handle()

    async def auto_restart(self, record: AgentRecord) -> None:
        """Start a crashed agent's container again and wait until it is ready."""
        if record.container_id is None or record.in_operation:
            return
        # A container still running is unhealthy, not exited: it needs a restart.
        running = record.state is not None and record.state.running
        await self.bring_back(record, restart=running, automatic=True)

    async def bring_back(self, record: AgentRecord, *, restart: bool, automatic: bool) -> None:
        """Restart (or start) an agent's container and wait until it is ready again.

        On failure the record takes whatever state the container is left in.
        """
        container_id = record.container_id
        if container_id is None:
            raise AgentStateError(f"agent {record.id!r} has no container")
        image = await require_image(
            self._backend, record.labels.image, record.labels.type, self._settings.image_prefix
        )
        lifecycle.restart_begun(record, automatic=automatic)
        intent = self._journal.begin("restart", record.id, container_id=container_id)
        try:
            if restart:
                await self._backend.restart(container_id, self._settings.stop_grace_s)
            else:
                await self._backend.start(container_id)
            self._journal.note(intent, step="restarted")
            if automatic:
                self._publisher.publish(
                    lifecycle.container_started(
                        record, reason="auto-restart", restartCount=record.restart_count
                    )
                )
            state = await self._readiness.wait(
                container_id, image, record.id, timeout_s=self._settings.ready_timeout_s
            )
        except BaseException as exc:
            if isinstance(exc, SocketError):
                self._journal.release(intent)
                raise
            current = None
            with contextlib.suppress(ParallaxError):
                current = await asyncio.shield(self._backend.get(container_id))
            self._publisher.publish(lifecycle.bring_back_failed(record, current))
            self._journal.end(intent)
            raise
        self._publisher.publish(
            lifecycle.became_ready(record, state, heartbeat=self._readiness.beating(image))
        )
        self._journal.end(intent)

    # -- housekeeping -----------------------------------------------------------------------

    async def remove_container(self, record: AgentRecord, reason: str) -> None:
        """Remove the container of an agent that is no longer wanted (janitor, gc)."""
        container_id = record.container_id
        if container_id is None or record.in_operation:
            return
        lifecycle.removal_begun(record)
        try:
            await self._backend.remove(container_id)
        except BaseException:
            lifecycle.stop_failed(record, None)
            raise
        events = lifecycle.container_removed(record, reason)
        self._forget(record.id)
        self._publisher.publish(events)
        log.info("removed container of agent %s: %s", record.id, reason)

    async def probe_starting(self, record: AgentRecord) -> None:
        """One readiness probe for an agent Docker still calls starting."""
        container_id = record.container_id
        if container_id is None:
            return
        image = await self._backend.get_image(record.labels.image)
        if image is None or not await self._readiness.passes(container_id, image, record.id):
            return
        self._publisher.publish(lifecycle.probe_passed(record))

    def _forget(self, agent_id: str) -> None:
        self._registry.drop(agent_id)
        self._sampler.forget(agent_id)
        with contextlib.suppress(OSError):
            self._secrets.remove(agent_id)
