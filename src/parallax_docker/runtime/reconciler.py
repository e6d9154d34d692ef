"""Keeps the service's registry true: engine events as they happen, a full resync after any gap.

The loop connects (or reconnects) to the engine, lists every managed container, then follows the
event stream from a moment before that list, so nothing that happens in between is missed. When
the stream breaks or the engine goes away, it backs off and starts over; the resync repairs
whatever changed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime

from parallax_docker.backends.base import Backend, ContainerEvent, ContainerState
from parallax_docker.errors import ParallaxError
from parallax_docker.runtime.labels import PREFIX
from parallax_docker.runtime.service import AgentService
from parallax_docker.runtime.telemetry import outcome_of

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
    def __init__(self, service: AgentService, backend: Backend) -> None:
        self._service = service
        self._backend = backend
        self._task: asyncio.Task[None] | None = None
        self.reconnects = 0
        self.synced = asyncio.Event()
        # Containers the engine reported out of memory, until their "die" arrives.
        self._oom: set[str] = set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="parallax-reconciler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = _INITIAL_BACKOFF_S
        first = True
        while True:
            try:
                await self._sync_and_follow()
                # A clean end of the stream means the engine closed it (shutting down).
                raise ParallaxError("the engine closed its event stream")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.synced.clear()
                if first or self._service.engine_up:
                    log.warning("lost the Docker engine's event stream: %s", _describe(exc))
                first = False
                self._service.engine_lost()
                self._service.telemetry.error(outcome_of(exc), "reconciler")
                self.reconnects += 1
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
            else:  # pragma: no cover - the try always raises
                backoff = _INITIAL_BACKOFF_S

    async def _sync_and_follow(self) -> None:
        info = await self._service.connect()
        since_ns = time.time_ns() - 1_000_000_000
        states = await self._backend.list(self._service.selector)
        self._service.adopt(states)
        self._service.engine_ready(info)
        self.synced.set()
        log.info("in sync with the Docker engine: %d managed container(s)", len(states))
        async for event in self._backend.watch_events(self._service.selector, since_ns=since_ns):
            await self._apply(event)

    async def _apply(self, event: ContainerEvent) -> None:
        agent_id = event.labels.get(PREFIX + "id") or self._service.agent_of_container(
            event.container_id
        )
        if not agent_id:
            if self._service.pool is not None:
                self._service.pool.observe_event(event)
            return
        if event.action == "destroy":
            self._oom.discard(event.container_id)
            self._service.forget(agent_id)
            return
        if event.action == "oom":
            self._oom.add(event.container_id)
            return
        if event.action not in _STATE_ACTIONS:
            return
        record = self._service.registry.find(agent_id)
        if record is not None and (record.transitioning or record.stopping):
            # The spawn, restart or stop under way reads the container's state itself and
            # settles the status; an inspect per event would only compete with it.
            if event.action == "die":
                self._oom.discard(event.container_id)
            return
        if (
            event.action == "die"
            and record is not None
            and record.state is not None
            and record.state.id == event.container_id
        ):
            # The event says it exited, and with what code: report that at once, then read
            # the full state (finish time, health) below.
            self._service.observe(exited(record.state, event, oom=event.container_id in self._oom))
            self._oom.discard(event.container_id)
        health = event.labels.get("health_status")
        if (
            event.action == "health_status"
            and health
            and record is not None
            and record.state is not None
            and record.state.id == event.container_id
        ):
            # The event carries all that changed; no inspect (one per check of every agent).
            self._service.observe(replace(record.state, health=health))
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
            self._service.forget(agent_id)
        else:
            self._service.observe(state)


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


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ParallaxError):
        return f"{exc.code}: {exc.message}"
    return type(exc).__name__
