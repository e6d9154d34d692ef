"""The janitor: the periodic part of keeping agents as they should be.

Each pass, from the registry (no engine call unless there is work):
- removes containers of spawns cut short by a crash (created, never started, past a grace),
  and of agents that never became ready;
- confirms agents Docker still calls "starting" with one readiness probe;
- stops agents past their lifetime (``resources.timeout``) or idle past ``idleTimeout``;
- restarts crashed agents that asked for ``autoRestart``, with a doubling back-off and a cap;
- removes exited agents' containers once they have been listed long enough;
- every so often, removes managed networks no agent uses any more.
Deadlines come from the container's own timestamps, so they hold across service restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from parallax_docker.backends.base import Backend
from parallax_docker.config import Settings
from parallax_docker.errors import ParallaxError
from parallax_docker.models import AgentStatus
from parallax_docker.runtime.clock import parse_engine_time
from parallax_docker.runtime.registry import AgentRecord
from parallax_docker.runtime.service import AgentService

log = logging.getLogger(__name__)

# Networks are listed with one engine call per network; no need to do it every pass.
_NETWORK_SWEEP_MAX_EVERY_S = 30.0


class Janitor:
    def __init__(self, service: AgentService, backend: Backend, settings: Settings) -> None:
        self._service = service
        self._backend = backend
        self._settings = settings
        self._task: asyncio.Task[None] | None = None
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_network_sweep = 0.0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="parallax-janitor")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None

    async def _run(self) -> None:
        while True:
            if not self._service.engine_up:
                # Poll briefly, so that the first pass (which settles adopted agents) runs
                # right after the registry is in sync.
                await asyncio.sleep(0.05)
                continue
            try:
                await self.sweep()
            except Exception as exc:  # one bad pass must not end housekeeping
                log.warning("janitor pass failed: %s", _describe(exc))
            await asyncio.sleep(self._settings.janitor_interval_s)

    async def sweep(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        for record in self._service.registry:
            action = self._due(record, now)
            if action is not None and record.id not in self._busy:
                self._busy.add(record.id)
                task = asyncio.create_task(self._act(record, action), name=f"janitor-{record.id}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        every = min(_NETWORK_SWEEP_MAX_EVERY_S, max(1.0, self._settings.network_grace_s))
        if now - self._last_network_sweep >= every:
            self._last_network_sweep = now
            await self.sweep_networks(now)

    def _due(self, record: AgentRecord, now: float) -> str | None:
        """What, if anything, is due for ``record`` now."""
        if record.transitioning or record.stopping or record.state is None:
            return None
        state = record.state
        settings = self._settings
        created = parse_engine_time(state.created_at) or now
        started = parse_engine_time(state.started_at)
        if state.status == "created":
            return "orphan" if now - created >= settings.orphan_grace_s else None
        if record.status == AgentStatus.STARTING:
            if started is not None and now - started >= settings.ready_timeout_s:
                return "never-ready"
            return "probe"
        if record.status in (AgentStatus.STOPPED, AgentStatus.ERROR):
            if record.labels.auto_restart and record.status == AgentStatus.ERROR:
                return "restart" if self._restart_allowed(record, now) else None
            finished = parse_engine_time(state.finished_at) or now
            return "expire" if now - finished >= settings.exited_retention_s else None
        timeout = record.labels.timeout
        # A claimed pooled container started before it became this agent: count the lifetime
        # from the later of its start and the agent's creation.
        born = max(started, parse_engine_time(record.labels.created_at) or 0.0) if started else None
        if timeout is not None and born is not None and now - born >= timeout:
            return "lifetime"
        idle = record.labels.idle_timeout
        # A turn under way is activity even while its CLI prints nothing.
        if idle is not None and not record.busy and now - record.last_activity >= idle:
            return "idle"
        return None

    def _restart_allowed(self, record: AgentRecord, now: float) -> bool:
        window = self._settings.auto_restart_window_s
        record.restart_times[:] = [t for t in record.restart_times if now - t < window]
        if len(record.restart_times) >= self._settings.auto_restart_max:
            return False
        if not record.restart_times:
            return True
        backoff = min(
            2.0 ** (len(record.restart_times) - 1), self._settings.auto_restart_backoff_max_s
        )
        return now - record.restart_times[-1] >= backoff

    async def _act(self, record: AgentRecord, action: str) -> None:
        service = self._service
        try:
            if action == "probe":
                await service.probe_starting(record)
            elif action == "orphan":
                await service.remove_container(record, "a spawn was cut short; removed")
            elif action == "never-ready":
                await service.remove_container(record, "the agent never became ready")
            elif action == "expire":
                await service.remove_container(record, "exited agent expired")
            elif action == "restart":
                record.restart_times.append(time.time())
                await service.auto_restart(record)
            elif action in ("lifetime", "idle"):
                reason = "timeout" if action == "lifetime" else "idle"
                await service.stop(record.id, reason=reason)
        except ParallaxError as exc:
            log.warning("janitor could not %s agent %s: %s", action, record.id, exc.code)
        finally:
            self._busy.discard(record.id)

    async def sweep_networks(self, now: float) -> list[str]:
        """Remove managed networks that no agent uses (never the default network)."""
        in_use = {record.labels.network for record in self._service.registry}
        removed = []
        for network in await self._backend.list_networks(self._service.selector):
            if network.name == self._settings.docker_network or network.name in in_use:
                continue
            if (
                network.containers
                or now - (parse_engine_time(network.created) or now)
                < self._settings.network_grace_s
            ):
                continue
            try:
                await self._backend.remove_network(network.name)
            except ParallaxError as exc:
                log.info("could not remove network %s: %s", network.name, exc.code)
                continue
            removed.append(network.name)
        return removed


def _describe(exc: BaseException) -> str:
    return f"{exc.code}: {exc.message}" if isinstance(exc, ParallaxError) else type(exc).__name__
