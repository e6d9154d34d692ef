"""Threads: the verbs the thread routes call, and the upkeep that keeps threads true.

A spawn is checked (runtime/threads/prepare.py, the agent's plan, its image), written to the
store, admitted and reserved like any agent spawn, and answered at once: the agent's start, the
context files and the objective happen afterwards, in the thread's worker, and are reported as
``thread_event`` events. A thread is kept in the store and comes back after a restart of the
service; its start-up intent in the journal is handed back to a worker by recovery. Each second
the upkeep pass reports idle threads (``policy.idleTimeoutMs``), stops those idle past
``policy.maxIdleChecks``, and forgets ended threads after ``PARALLAX_EXITED_RETENTION_S``.
"""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import Callable, Iterable

from parallax_docker.backends.base import Backend
from parallax_docker.config import Settings
from parallax_docker.errors import (
    AgentNotFoundError,
    ConflictError,
    ThreadNotFoundError,
    ThreadStateError,
    ValidationError,
)
from parallax_docker.models import AgentStatus
from parallax_docker.runtime.engine_link import EngineLink
from parallax_docker.runtime.image_lookup import require_image
from parallax_docker.runtime.journal import Intent, Journal
from parallax_docker.runtime.loops import Loop, Tasks
from parallax_docker.runtime.messaging import MessagingService
from parallax_docker.runtime.operations import Operations
from parallax_docker.runtime.registry import Registry
from parallax_docker.runtime.spawner import Spawner
from parallax_docker.runtime.store import Store
from parallax_docker.runtime.threads import labels as thread_labels
from parallax_docker.runtime.threads import record
from parallax_docker.runtime.threads.book import ThreadBook
from parallax_docker.runtime.threads.input import plan_input
from parallax_docker.runtime.threads.persist import from_json
from parallax_docker.runtime.threads.prepare import prepare
from parallax_docker.runtime.threads.record import THREAD_EVENT, ThreadRecord
from parallax_docker.runtime.threads.spec import QueuedInput
from parallax_docker.runtime.threads.workers import Workers
from parallax_docker.thread_models import (
    SpawnThreadRequest,
    ThreadEventBody,
    ThreadHandle,
    ThreadInputRequest,
    ThreadStatus,
)

log = logging.getLogger(__name__)

UPKEEP_EVERY_S = 1.0
_IDLE_CANDIDATES = (
    ThreadStatus.READY,
    ThreadStatus.IDLE,
    ThreadStatus.FAILED,
    ThreadStatus.BLOCKED,
)


class Threads:
    def __init__(
        self,
        *,
        settings: Settings,
        backend: Backend,
        book: ThreadBook,
        workers: Workers,
        spawner: Spawner,
        operations: Operations,
        messaging: MessagingService,
        registry: Registry,
        engine: EngineLink,
        journal: Journal,
        store: Store,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._backend = backend
        self._book = book
        self._workers = workers
        self._spawner = spawner
        self._operations = operations
        self._messaging = messaging
        self._registry = registry
        self._engine = engine
        self._journal = journal
        self._store = store
        self._clock = clock
        self._stops = Tasks()
        self._loop = Loop("threads", self._upkeep)

    async def load(self) -> None:
        """The threads the store kept (before the first sync with the engine)."""
        for body in await self._store.threads():
            thread = from_json(body)
            if thread is not None:
                self._book.put(thread)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self._stops.stop()
        await self._workers.stop()

    # -- the routes' verbs ------------------------------------------------------------------

    async def spawn(self, request: SpawnThreadRequest) -> ThreadHandle:
        """Answer as soon as the thread is kept and its agent reserved (docs/threads.md)."""
        self._engine.require()
        prepared = prepare(request, now=self._clock())
        thread_id = prepared.spec.id
        existing = self._book.find(thread_id)
        if existing is not None and existing.live:
            if existing.spec.spec_hash == prepared.spec.spec_hash:
                return existing.handle()  # a retried spawn: the same thread
            raise ConflictError(f"a thread with id {thread_id!r} already exists")
        if existing is not None:
            await self._book.drop(thread_id)  # an ended thread's id is free again
        self._book.reserve(thread_id)
        try:
            plan = self._spawner.plan(prepared.agent, prepared.labels)
            await require_image(
                self._backend, plan.image, plan.labels.type, self._settings.image_prefix
            )
            thread = record.spawned(prepared.spec, prepared.files, self._clock())
            self._book.put(thread)
            await self._book.commit_now(thread)  # kept before anything is made
            try:
                reservation = self._spawner.reserve(plan)
            except BaseException:
                await self._book.drop(thread_id)
                raise
        finally:
            self._book.release(thread_id)
        intent = self._journal.begin("thread", thread_id)
        self._workers.start(thread, reservation=reservation, intent=intent)
        log.info("thread spawning", extra={"agent_id": thread_id})
        return thread.handle()

    def get(self, thread_id: str) -> ThreadHandle:
        return self._book.get(thread_id).handle()

    def list(
        self,
        *,
        execution_id: str | None = None,
        role: str | None = None,
        statuses: Iterable[str] = (),
        agent_types: Iterable[str] = (),
    ) -> builtins.list[ThreadHandle]:
        wanted = set(statuses)
        unknown = wanted - {status.value for status in ThreadStatus}
        if unknown:
            raise ValidationError(
                f"unknown thread status {sorted(unknown)[0][:40]!r}",
                resolution="Use one of: " + ", ".join(status.value for status in ThreadStatus),
            )
        types = set(agent_types)
        return [
            thread.handle()
            for thread in self._book
            if (execution_id is None or thread.spec.execution_id == execution_id)
            and (role is None or thread.spec.role == role)
            and (not wanted or thread.status.value in wanted)
            and (not types or thread.spec.agent_type in types)
        ]

    async def stop_thread(
        self, thread_id: str, *, force: bool = False, timeout_ms: int | None = None
    ) -> None:
        """Stop the thread's agent (graceful unless ``force``) and end the thread; a thread that
        has ended already answers as stopped."""
        thread = self._book.get(thread_id)
        if not thread.live:
            return
        self._engine.require()
        record.stop_begun(thread)
        try:
            if self._workers.spawning(thread_id):
                await self._workers.cancel(thread_id)  # the spawner undoes the spawn
            else:
                await self._operations.stop(
                    thread.spec.agent_id,
                    force=force,
                    timeout_s=None if timeout_ms is None else timeout_ms / 1000,
                )
        except AgentNotFoundError:
            pass  # the agent went already; the thread ends below
        except BaseException:
            record.stop_failed(thread)
            self._book.commit(thread)
            raise
        # The agent's agent_stopped has ended the thread; when there was none (no agent, or
        # one stopped a moment ago), this does.
        self._book.commit(thread, record.agent_gone(thread, "deleted", self._clock()))

    async def send(self, thread_id: str, request: ThreadInputRequest) -> None:
        """Queue a message for a turn, or interrupt the running one; the message is on disk
        before this returns."""
        thread = self._book.get(thread_id)
        plan = plan_input(request)
        if not thread.live or thread.stopping:
            raise ThreadStateError(
                f"thread {thread_id!r} is {thread.status.value}; it takes no input",
                resolution="Spawn a new thread; this one has ended (or is being stopped).",
            )
        if plan.interrupt:
            interrupted = await self._messaging.interrupt(thread.spec.agent_id)
            if not interrupted and plan.message is None:
                raise ThreadStateError(
                    f"thread {thread_id!r} runs no turn; there is nothing to interrupt",
                    resolution="Send Ctrl-C while a turn runs (the thread's status is running).",
                )
        if plan.message is not None:
            item = QueuedInput(plan.message, dict(request.metadata or {}))
            record.input_queued(thread, item, self._clock())
            await self._book.commit_now(thread)

    async def events(self, thread_id: str, limit: int) -> builtins.list[ThreadEventBody]:
        """The thread's last ``limit`` events, oldest first (kept across restarts)."""
        known = self._book.find(thread_id) is not None
        found = await self._store.recent_events(thread_id, limit, event=THREAD_EVENT)
        if not known and not found:
            raise ThreadNotFoundError(f"thread {thread_id[:80]!r} does not exist")
        bodies = [event.data.get("event") for event in found]
        return [ThreadEventBody.model_validate(body) for body in bodies if isinstance(body, dict)]

    # -- keeping threads true ---------------------------------------------------------------

    def resync(self) -> None:
        """After each sync with the engine (no await): threads whose store row was lost come
        back from their agents' labels, and every live thread gets its worker."""
        now = self._clock()
        for agent in self._registry:
            if thread_labels.thread_of(agent.labels) is None or self._book.find(agent.id):
                continue
            spec = thread_labels.decode(agent.labels)
            if spec is not None:
                status = _status_of(agent.status)
                thread = record.adopted(spec, status, now)
                self._book.put(thread)
                self._book.commit(thread)
                log.info("thread adopted from its agent's labels", extra={"agent_id": agent.id})
        for thread in self._book:
            if thread.live and not self._journal.owned("thread", thread.id):
                self._workers.start(thread)
            # Whatever a worker waited for (the engine, among others) may have changed.
            self._book.wake(thread.id)

    async def recover(self, intent: Intent) -> None:
        """A thread's start-up that a crash cut short: its worker goes on from where it was."""
        thread = self._book.find(intent.key)
        if thread is None:
            self._journal.end(intent)
            return
        objective_turn = intent.data.get("objectiveTurn")
        if isinstance(objective_turn, str):
            record.objective_recovered(thread, objective_turn)
        self._workers.start(thread, intent=intent)

    async def _upkeep(self) -> float:
        now = self._clock()
        for thread in self._book:
            if thread.ended_at is not None:
                if now - thread.ended_at >= self._settings.exited_retention_s:
                    await self._book.drop(thread.id)
                continue
            if self._engine.up and not self._journal.owned("thread", thread.id):
                self._workers.start(thread)  # a worker that ended by a failure starts again
            if self._engine.up and self._registry.find(thread.spec.agent_id) is None:
                self._book.wake(thread.id)  # its worker sees the agent gone
            self._check_idle(thread, now)
        return UPKEEP_EVERY_S

    def _check_idle(self, thread: ThreadRecord, now: float) -> None:
        timeout = thread.spec.idle_timeout_s
        if (
            timeout is None
            or thread.stopping
            or thread.turn_id is not None
            or thread.inputs
            or thread.status not in _IDLE_CANDIDATES
        ):
            return
        since = thread.last_activity_at or thread.updated_at
        if now - since < timeout * (thread.idle_checks + 1):
            return
        self._book.commit(thread, record.went_idle(thread, now))
        most = thread.spec.max_idle_checks
        if most is not None and thread.idle_checks >= most:
            self._stops.spawn(self._stop_idle(thread), name=f"thread-idle-{thread.id}")

    async def _stop_idle(self, thread: ThreadRecord) -> None:
        record.stop_begun(thread)
        try:
            await self._operations.stop(thread.spec.agent_id, reason="idle")
        except AgentNotFoundError:
            pass
        except BaseException:
            record.stop_failed(thread)
            raise
        self._book.commit(thread, record.agent_gone(thread, "idle", self._clock()))


def _status_of(agent: AgentStatus) -> ThreadStatus:
    if agent == AgentStatus.ERROR:
        return ThreadStatus.FAILED
    if agent in (AgentStatus.PENDING, AgentStatus.STARTING):
        return ThreadStatus.STARTING
    return ThreadStatus.READY
