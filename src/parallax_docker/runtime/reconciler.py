"""Keeps the service's registry true: engine events as they happen, a full resync after any gap.

The loop connects (or reconnects) to the engine, lists every managed container, then follows the
event stream from a moment before that list, so nothing that happens in between is missed. When
the stream breaks or the engine goes away, it backs off and starts over; the resync repairs
whatever changed meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from parallax_docker.backends.base import Backend, ContainerEvent, ContainerState
from parallax_docker.errors import EngineError, ParallaxError
from parallax_docker.runtime.engine_link import EngineLink
from parallax_docker.runtime.labels import PREFIX
from parallax_docker.runtime.loops import Loop, describe
from parallax_docker.runtime.observer import Observer
from parallax_docker.runtime.outages import Outages
from parallax_docker.runtime.pool.pool import WarmPool
from parallax_docker.runtime.registry import Registry
from parallax_docker.runtime.telemetry import Telemetry, outcome_of

log = logging.getLogger(__name__)

_INITIAL_BACKOFF_S = 0.2
_MAX_BACKOFF_S = 5.0
# Actions after which the container's state is read again. Not "kill" (a signal was sent; the
# state changes only with the "die" that follows), "stop" (it follows "die") or "oom" (noted,
# and applied with the "die" that follows it).
_STATE_ACTIONS = frozenset(
    {"create", "start", "restart", "die", "pause", "unpause", "health_status", "update"}
)


class Reconciler:
    def __init__(
        self,
        *,
        backend: Backend,
        engine: EngineLink,
        observer: Observer,
        registry: Registry,
        selector: Mapping[str, str],
        telemetry: Telemetry,
        after_sync: Callable[[], object] = lambda: None,
        pool: WarmPool | None = None,
        outages: Outages | None = None,
    ) -> None:
        self._backend = backend
        self._engine = engine
        self._observer = observer
        self._registry = registry
        self._selector = dict(selector)
        self._telemetry = telemetry
        self._after_sync = after_sync
        self._pool = pool
        self._outages = outages
        self._first = True
        self._loop = Loop(
            "reconciler",
            self._sync_and_follow,
            first_backoff_s=_INITIAL_BACKOFF_S,
            max_backoff_s=_MAX_BACKOFF_S,
            on_error=self._lost,
        )
        self.reconnects = 0
        self.synced = asyncio.Event()
        # Containers the engine reported out of memory, until their "die" arrives.
        self._oom: set[str] = set()

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    def _lost(self, exc: BaseException) -> None:
        self.synced.clear()
        if self._first or self._engine.up:
            log.warning("lost the Docker engine's event stream: %s", describe(exc))
        self._first = False
        self._engine.lost()
        if self._outages is not None:
            self._outages.lost()
        self._telemetry.error(outcome_of(exc), "reconciler")
        self.reconnects += 1

    async def _sync_and_follow(self) -> float:
        info = await self._engine.connect()
        since_ns = time.time_ns() - 1_000_000_000
        states = await self._backend.list(self._selector)
        # No await from here to ready(): recovery takes what a crash left half-done before any
        # request can see it or take its name.
        self._observer.adopt(states)
        if self._outages is not None:
            # Before recovery and the janitor act on what the engine stopped meanwhile.
            self._outages.synced()
        self._after_sync()
        self._engine.ready(info)
        self.synced.set()
        self._loop.reset_backoff()
        log.info("in sync with the Docker engine: %d managed container(s)", len(states))
        async for event in self._backend.watch_events(self._selector, since_ns=since_ns):
            await self._apply(event)
        # A clean end of the stream means the engine closed it (shutting down).
        raise EngineError("the engine closed its event stream")

    async def _apply(self, event: ContainerEvent) -> None:
        agent_id = event.labels.get(PREFIX + "id") or self._observer.agent_of_container(
            event.container_id
        )
        if not agent_id:
            if self._pool is not None:
                self._pool.observe_event(event)
            return
        if event.action == "destroy":
            self._oom.discard(event.container_id)
            self._observer.forget(agent_id)
            return
        if event.action == "oom":
            self._oom.add(event.container_id)
            return
        if event.action not in _STATE_ACTIONS:
            return
        record = self._registry.find(agent_id)
        if record is not None and record.in_operation:
            # The spawn, restart or stop under way reads the container's state itself and
            # settles the status; an inspect per event would only compete with it.
            if event.action == "die":
                self._oom.discard(event.container_id)
            return
        current = record.state if record is not None else None
        if current is not None and current.id != event.container_id:
            current = None
        if event.action == "die" and current is not None:
            # The event says it exited, and with what code: report that at once, then read
            # the full state (finish time, health) below.
            self._observer.observe(exited(current, event, oom=event.container_id in self._oom))
            self._oom.discard(event.container_id)
        health = event.labels.get("health_status")
        if event.action == "health_status" and health and current is not None:
            # The event carries all that changed; no inspect (one per check of every agent).
            self._observer.observe(replace(current, health=health))
            return
        try:
            state = await self._backend.get(event.container_id)
        except ParallaxError as exc:
            log.debug(
                "could not read container %s after %s: %s",
                event.container_id[:12],
                event.action,
                exc.message,
            )
            return
        if state is None:
            self._observer.forget(agent_id)
        else:
            self._observer.observe(state)


def exited(state: ContainerState, event: ContainerEvent, *, oom: bool) -> ContainerState:
    """``state`` after the "die" ``event``, from what the event carries."""
    finished = (
        datetime.fromtimestamp(event.time_ns / 1e9, UTC).isoformat() if event.time_ns else None
    )
    return replace(
        state,
        status="exited",
        running=False,
        exit_code=event.exit_code,
        oom_killed=oom or state.oom_killed,
        finished_at=finished or state.finished_at,
        pid=None,
    )
