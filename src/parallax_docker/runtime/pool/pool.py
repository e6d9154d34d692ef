"""The warm pool: agent containers started ahead of time, claimed by a spawn that fits.

``PARALLAX_POOL`` names, per agent type, how many containers to keep started (runtime/pool/fit.py
says what a pooled container is and which spawns it can serve). The platform's ``WarmStart``
capability holds each one's agent process until a claim; this module keeps the pool full, hands
out idle containers, and turns a claimed one into the agent, in order:

1. records the claim (the agent's labels) as pending (runtime/pool/claims.py);
2. asks the platform to make the container the agent (its env, limits, name and aliases) and
   to let its process start;
3. waits for readiness: the container's own announcement, else the image's check from outside;
4. checks the limits the platform applied and that the agent runs, then marks the claim
   complete.
On any failure the container is removed and the spawn starts cold. See docs/pool.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets as token
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from parallax_docker.backends.base import Backend, ContainerEvent, ContainerState, ImageInfo
from parallax_docker.backends.capabilities import WarmClaim, WarmContainer, WarmStart
from parallax_docker.config import Settings
from parallax_docker.errors import (
    HealthCheckFailedError,
    ImageNotFoundError,
    InsecureSpawnError,
    ParallaxError,
)
from parallax_docker.pool_config import PoolSize
from parallax_docker.run_as import RunAs
from parallax_docker.runtime.engine_link import EngineLink
from parallax_docker.runtime.labels import container_name, selector
from parallax_docker.runtime.loops import Loop, Tasks, describe
from parallax_docker.runtime.pool.claims import ClaimStore
from parallax_docker.runtime.pool.fit import (
    POOL,
    POOL_SLOT,
    pool_image,
    pool_spec,
    unfit_reason,
)
from parallax_docker.runtime.readiness import Readiness
from parallax_docker.runtime.spec import PlannedAgent, health_probe
from parallax_docker.runtime.unprivileged import UserLookup

log = logging.getLogger(__name__)

_FILL_CONCURRENCY = 2
_MAINTAIN_EVERY_S = 10.0
# A pooled container is already up: readiness after a claim is quick or something is wrong.
_CLAIM_READY_TIMEOUT_S = 15.0
# Without the container's announcement this soon, readiness is probed from outside instead.
_ANNOUNCE_WAIT_S = 3.0


@dataclass
class PoolSlot:
    warm: WarmContainer
    size: PoolSize
    image_ref: str
    image: ImageInfo

    @property
    def container_id(self) -> str:
        return self.warm.container_id


@dataclass
class PoolCounters:
    claims: int = 0
    misses: int = 0
    failures: int = 0
    filled: int = 0


class WarmPool:
    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        warm: WarmStart,
        claims: ClaimStore,
        engine: EngineLink,
        users: UserLookup,
        readiness: Readiness,
        agent_env: Callable[[str, Mapping[str, str]], Mapping[str, str]] | None = None,
    ) -> None:
        self._settings = settings
        # The env as the agent gets it (the model gateway swaps provider keys for a token).
        self._agent_env = agent_env
        self._users = users
        self._readiness = readiness
        self._backend = backend
        self._warm = warm
        self._engine = engine
        self._sizes: dict[str, PoolSize] = {s.type: s for s in settings.pool if s.size > 0}
        self._idle: dict[str, list[PoolSlot]] = {t: [] for t in self._sizes}
        self._filling: dict[str, int] = dict.fromkeys(self._sizes, 0)
        self._claiming: set[str] = set()
        self._starting: set[str] = set()
        self._maintained = 0.0
        self._loop = Loop("pool", self._pass)
        self._discards = Tasks()
        self.counters = PoolCounters()
        self.claims = claims

    @property
    def enabled(self) -> bool:
        return bool(self._sizes)

    def idle_count(self, agent_type: str | None = None) -> int:
        if agent_type is not None:
            return len(self._idle.get(agent_type, ()))
        return sum(len(slots) for slots in self._idle.values())

    def secret_keys(self) -> list[str]:
        """The secrets keys idle pooled containers have mounted (never prune them)."""
        return [slot.warm.key for slots in self._idle.values() for slot in slots]

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self.enabled:
            self._loop.start()

    async def stop(self) -> None:
        """Stop refilling and remove every idle pooled container (claimed ones are agents)."""
        await self._loop.stop()
        await self._discards.stop()
        idle = [slot for slots in self._idle.values() for slot in slots]
        for slots in self._idle.values():
            slots.clear()
        if idle and self._engine.up:
            await asyncio.gather(
                *(self._discard(slot.warm) for slot in idle), return_exceptions=True
            )

    async def _pass(self) -> float:
        if not self._engine.up:
            return 0.1
        now = time.monotonic()
        if not self._maintained or now - self._maintained >= _MAINTAIN_EVERY_S:
            await self.maintain()
            self._maintained = now
        await self._fill()
        return _MAINTAIN_EVERY_S

    # -- filling --------------------------------------------------------------------------

    async def _fill(self) -> None:
        wanted = []
        for agent_type, size in self._sizes.items():
            missing = size.size - len(self._idle[agent_type]) - self._filling[agent_type]
            for _ in range(max(0, missing)):
                self._filling[agent_type] += 1
                wanted.append(size)
        if not wanted:
            return
        gate = asyncio.Semaphore(_FILL_CONCURRENCY)

        async def one(size: PoolSize) -> None:
            async with gate:
                await self._fill_one(size)

        results = await asyncio.gather(*(one(size) for size in wanted), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            log.warning(
                "could not start %d pooled container(s): %s", len(failed), describe(failed[0])
            )

    async def _fill_one(self, size: PoolSize) -> None:
        try:
            ref = pool_image(self._settings, size)
            image = await self._backend.get_image(ref)
            if image is None:
                raise ImageNotFoundError(f"image {ref} of the {size.type} pool is not built")
            slot = token.token_hex(6)
            run_as = await self._run_as(size, image)
            spec = pool_spec(
                size, image, self._settings, slot, run_as, beating=self._readiness.beating(image)
            )
            # Counted as held while it starts: maintenance must not take it for a leftover.
            self._starting.add(spec.name)
            try:
                warm = await self._warm.prepare(spec, image, health_probe(image), slot)
            finally:
                self._starting.discard(spec.name)
            self._idle[size.type].append(PoolSlot(warm, size, ref, image))
            self.counters.filled += 1
        finally:
            self._filling[size.type] -= 1

    async def _run_as(self, size: PoolSize, image: ImageInfo) -> RunAs:
        """Who the image's pooled containers run as: a held container starts at once, so a
        user named by the image is looked up first (once per image), never after."""
        planned = self._users.plan(image)
        probe = pool_spec(size, image, self._settings, token.token_hex(6), planned, False)
        return await self._users.resolve(probe, image)

    # -- claiming -------------------------------------------------------------------------

    def take(self, plan: PlannedAgent) -> PoolSlot | None:
        """An idle pooled container for ``plan``, or None (no fit, or none left)."""
        size = self._sizes.get(plan.labels.type)
        reason = unfit_reason(plan, self._settings, size)
        if reason is not None:
            if size is not None:
                log.debug("spawn of %s starts cold: it asks for %s", plan.labels.id, reason)
            return None
        idle = self._idle[plan.labels.type]
        if not idle:
            self.counters.misses += 1
            self._loop.wake()
            return None
        slot = idle.pop(0)
        self._claiming.add(slot.container_id)
        return slot

    async def claim(
        self,
        slot: PoolSlot,
        plan: PlannedAgent,
        on_started: Callable[[], None],
        progress: Callable[[str], None] = lambda step: None,
    ) -> ContainerState:
        """Make ``slot`` the agent of ``plan``; on any failure the container is removed.

        ``progress`` hears each step as it is passed (``pending``, ``claimed``).
        """
        container_id = slot.container_id
        labels = plan.labels
        started = time.monotonic()
        try:
            self.claims.put(container_id, labels, complete=False)
            progress("pending")
            request = WarmClaim(
                key=labels.id,
                name=container_name(labels.id),
                network=plan.network.name,
                aliases=tuple(dict.fromkeys((labels.name, container_name(labels.id), labels.id))),
                memory_bytes=labels.memory_bytes,
                nano_cpus=labels.nano_cpus,
                env=plan.env if self._agent_env is None else self._agent_env(labels.id, plan.env),
            )
            timeout = min(self._settings.ready_timeout_s, _CLAIM_READY_TIMEOUT_S)
            announced = await self._warm.claim(slot.warm, request, _ANNOUNCE_WAIT_S)
            progress("claimed")
            on_started()
            if not announced:
                log.warning(
                    "pooled container %s did not announce itself; probing it", slot.warm.slot
                )
                await self._readiness.wait(
                    container_id,
                    slot.image,
                    labels.id,
                    timeout_s=max(1.0, timeout - (time.monotonic() - started)),
                )
            final = await self._backend.get(container_id)
            if final is None or not final.running:
                raise HealthCheckFailedError("the agent exited while it was claimed")
            if final.memory_bytes != labels.memory_bytes or final.nano_cpus != labels.nano_cpus:
                raise InsecureSpawnError("the engine did not apply the agent's limits at claim")
            self.claims.put(container_id, labels, complete=True)
        except BaseException:
            self.counters.failures += 1
            await asyncio.shield(self._discard(slot.warm, key=labels.id))
            raise
        finally:
            self._claiming.discard(container_id)
            self._loop.wake()
        self.counters.claims += 1
        log.info(
            "agent claimed from the pool",
            extra={
                "agent_id": labels.id,
                "type": labels.type,
                "seconds": round(time.monotonic() - started, 4),
            },
        )
        return final

    async def _discard(self, warm: WarmContainer, key: str | None = None) -> None:
        with contextlib.suppress(ParallaxError):
            await self._warm.discard(warm.container_id, warm.slot, key)
        self.claims.drop(warm.container_id)

    # -- keeping it true ------------------------------------------------------------------

    def observe_event(self, event: ContainerEvent) -> None:
        """An engine event for a container without agent labels: maybe an idle pooled one."""
        if event.labels.get(POOL) != "true" or event.action not in ("die", "destroy", "oom"):
            return
        for slots in self._idle.values():
            for slot in list(slots):
                if slot.container_id == event.container_id:
                    slots.remove(slot)
                    log.warning("a pooled container %s died while idle", slot.warm.slot)
                    self._discards.spawn(self._discard(slot.warm), name="parallax-pool-discard")
                    self._loop.wake()

    def holds(self) -> set[str]:
        """Containers (ids, or names while starting) this pool keeps idle, starts or claims."""
        held = {slot.container_id for slots in self._idle.values() for slot in slots}
        return held | self._claiming | self._starting

    async def leftovers(self) -> list[ContainerState]:
        """Pooled containers this pool does not hold and no claim made an agent."""
        return await leftover_pool_containers(
            self._backend, self._settings.instance, self.claims, self.holds
        )

    async def maintain(self) -> list[str]:
        """Remove leftovers (a previous run's idle containers, half-made claims, dead idle
        ones), forget claims whose container is gone; the names of what was removed."""
        found = await self._backend.list({**selector(self._settings.instance), POOL: "true"})
        present = {state.id for state in found}
        for container_id in self.claims.containers() - present:
            if container_id not in self._claiming:
                self.claims.drop(container_id)
        removed = []
        for state in await self.leftovers():
            with contextlib.suppress(ParallaxError):
                await remove_pool_container(self._warm, self.claims, state)
                removed.append(state.name)
        for slots in self._idle.values():
            for slot in list(slots):
                if slot.container_id not in present:
                    slots.remove(slot)
                    await self._discard(slot.warm)
        if removed:
            log.info("removed %d pooled container(s) left over", len(removed))
        return removed


async def leftover_pool_containers(
    backend: Backend, instance: str, claims: ClaimStore, held: Callable[[], set[str]]
) -> list[ContainerState]:
    """The instance's pooled containers that are neither ``held`` by a live pool nor claimed:
    a previous run's idle ones, half-made claims, a disabled pool's."""
    found = await backend.list({**selector(instance), POOL: "true"})
    # Asked after the list: what the pool holds now, including what it made meanwhile.
    keep = held()
    return [
        state
        for state in found
        if state.id not in keep and state.name not in keep and claims.labels(state.id) is None
    ]


async def remove_pool_container(warm: WarmStart, claims: ClaimStore, state: ContainerState) -> None:
    """Remove a leftover pooled container with everything kept for it and its claim record."""
    await warm.discard(state.id, state.labels.get(POOL_SLOT, ""))
    claims.drop(state.id)
