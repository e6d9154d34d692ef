"""The janitor: the periodic part of keeping agents as they should be.

Each pass, from the registry (no engine call unless there is work):
- removes containers of spawns cut short by a crash (created, never started, past a grace),
  and of agents that never became ready;
- confirms agents Docker still calls "starting" with one readiness probe;
- stops agents past their lifetime (``resources.timeout``) or idle past ``idleTimeout``;
- restarts crashed agents that asked for ``autoRestart`` (and those the engine stopped while it
  went down), with a doubling back-off and a cap;
- once per heartbeat interval, reads the heartbeat of agents that beat one (runtime/heartbeat.py);
- removes exited agents' containers once they have been listed long enough;
- every so often, removes managed networks no agent uses any more;
- takes over operations left in the journal that no one is finishing (runtime/recovery.py).
Deadlines come from the container's own timestamps, so they hold across service restarts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from parallax_docker.backends.base import Backend
from parallax_docker.config import Settings
from parallax_docker.errors import ParallaxError
from parallax_docker.models import AgentStatus
from parallax_docker.runtime import lifecycle
from parallax_docker.runtime.agent_record import AgentRecord
from parallax_docker.runtime.clock import parse_engine_time
from parallax_docker.runtime.engine_link import EngineLink
from parallax_docker.runtime.heartbeat import HeartbeatWatch
from parallax_docker.runtime.loops import Loop, Tasks, describe
from parallax_docker.runtime.networks import unused_networks
from parallax_docker.runtime.operations import Operations
from parallax_docker.runtime.registry import Registry

log = logging.getLogger(__name__)

# Networks are listed with one engine call per network; no need to do it every pass.
_NETWORK_SWEEP_MAX_EVERY_S = 30.0


class Janitor:
    def __init__(
        self,
        *,
        settings: Settings,
        backend: Backend,
        registry: Registry,
        engine: EngineLink,
        operations: Operations,
        selector: Mapping[str, str],
        take_orphans: Callable[[], int] = lambda: 0,
        heartbeats: HeartbeatWatch | None = None,
    ) -> None:
        self._settings = settings
        self._backend = backend
        self._registry = registry
        self._engine = engine
        self._operations = operations
        self._selector = dict(selector)
        self._take_orphans = take_orphans
        self._heartbeats = heartbeats
        self._busy: set[str] = set()
        self._actions = Tasks()
        self._loop = Loop("janitor", self._pass)
        self._last_network_sweep = 0.0

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self._actions.stop()

    async def _pass(self) -> float:
        if not self._engine.up:
            # Poll briefly, so that the first pass (which settles adopted agents) runs right
            # after the registry is in sync.
            return 0.05
        await self.sweep()
        return self._settings.janitor_interval_s

    async def sweep(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self._take_orphans()
        if self._heartbeats is not None:
            self._heartbeats.sweep(now)
        for record in self._registry:
            action = self._due(record, now)
            if action is not None and record.id not in self._busy:
                self._busy.add(record.id)
                self._actions.spawn(self._act(record, action), name=f"janitor-{record.id}")
        every = min(_NETWORK_SWEEP_MAX_EVERY_S, max(1.0, self._settings.network_grace_s))
        if now - self._last_network_sweep >= every:
            self._last_network_sweep = now
            await self.sweep_networks(now)

    async def settle(self) -> None:
        """Until the actions started so far have ended (tests)."""
        await self._actions.wait()

    def _due(self, record: AgentRecord, now: float) -> str | None:
        """What, if anything, is due for ``record`` now."""
        if record.in_operation or record.state is None:
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
            crashed = record.status == AgentStatus.ERROR or record.engine_stopped
            if record.labels.auto_restart and crashed:
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
        lifecycle.forget_restarts_before(record, now - self._settings.auto_restart_window_s)
        if len(record.restart_times) >= self._settings.auto_restart_max:
            return False
        if not record.restart_times:
            return True
        backoff = min(
            2.0 ** (len(record.restart_times) - 1), self._settings.auto_restart_backoff_max_s
        )
        return now - record.restart_times[-1] >= backoff

    async def _act(self, record: AgentRecord, action: str) -> None:
        operations = self._operations
        try:
            if action == "probe":
                await operations.probe_starting(record)
            elif action == "orphan":
                await operations.remove_container(record, "a spawn was cut short; removed")
            elif action == "never-ready":
                await operations.remove_container(record, "the agent never became ready")
            elif action == "expire":
                await operations.remove_container(record, "exited agent expired")
            elif action == "restart":
                await operations.auto_restart(record)
            elif action in ("lifetime", "idle"):
                reason = "timeout" if action == "lifetime" else "idle"
                await operations.stop(record.id, reason=reason)
        except ParallaxError as exc:
            log.warning("janitor could not %s agent %s: %s", action, record.id, describe(exc))
        finally:
            self._busy.discard(record.id)

    async def sweep_networks(self, now: float) -> list[str]:
        """Remove managed networks that no agent uses (never the default network)."""
        removed = []
        for name in await unused_networks(
            self._backend, self._registry, self._selector, self._settings, now
        ):
            try:
                await self._backend.remove_network(name)
            except ParallaxError as exc:
                log.info("could not remove network %s: %s", name, exc.code)
                continue
            removed.append(name)
        return removed
