"""One worker per live thread: it makes the agent, prepares it, runs the objective, then the
thread's inputs, one turn at a time, in order.

A worker does a step when it can and otherwise sleeps until its thread (or its agent) changes:
1. the spawn reserved by the request (``Spawner.complete``); a failure fails the thread;
2. the context files, once the agent takes work (journal step ``prepared``);
3. the objective, as the first turn (journal step ``objective``); its answer primes the thread;
4. each queued input, once the agent is free.
The thread's start-up intent (kind ``thread``) is ended once the objective has been answered or
the thread has ended; after a crash, recovery hands the intent back to a new worker, which goes
on from the step the record shows. An agent that takes work is ready (or waiting for a login),
not busy, not being moved by an operation, and has no turn of anyone's in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from parallax_docker.backends.base import Backend
from parallax_docker.errors import ParallaxError
from parallax_docker.models import AgentStatus
from parallax_docker.runtime.agent_record import AgentRecord
from parallax_docker.runtime.journal import Intent, Journal
from parallax_docker.runtime.loops import Tasks
from parallax_docker.runtime.messaging import MessagingService
from parallax_docker.runtime.recovery import SPAWN_INTERRUPTED
from parallax_docker.runtime.registry import Registry
from parallax_docker.runtime.spawner import Reservation, Spawner
from parallax_docker.runtime.threads import record
from parallax_docker.runtime.threads.book import ThreadBook
from parallax_docker.runtime.threads.files import write_context_files
from parallax_docker.runtime.threads.record import ThreadRecord
from parallax_docker.runtime.threads.spec import QueuedInput

log = logging.getLogger(__name__)

_TAKES_WORK = (AgentStatus.READY, AgentStatus.AUTHENTICATING)
# Marks the thread's own turns in the task message's metadata.
OBJECTIVE = "objective"
INPUT = "input"


class Workers:
    def __init__(
        self,
        *,
        book: ThreadBook,
        registry: Registry,
        spawner: Spawner,
        messaging: MessagingService,
        backend: Backend,
        journal: Journal,
        spawn_grace_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._book = book
        self._registry = registry
        self._spawner = spawner
        self._messaging = messaging
        self._backend = backend
        self._journal = journal
        self._clock = clock
        # How long a stopping service lets the spawns under way finish (as a spawn request in
        # flight would), so that their threads come back whole after the restart.
        self._spawn_grace_s = spawn_grace_s
        self._tasks = Tasks()
        self._running: dict[str, asyncio.Task[None]] = {}
        # Spawns reserved for a worker that has not taken them up yet, and those under way.
        self._reservations: dict[str, Reservation] = {}
        self._spawns: dict[str, asyncio.Future[object]] = {}
        self._intents: dict[str, Intent] = {}

    def running(self, thread_id: str) -> bool:
        return thread_id in self._running

    def spawning(self, thread_id: str) -> bool:
        return thread_id in self._reservations or thread_id in self._spawns

    def start(
        self,
        thread: ThreadRecord,
        *,
        reservation: Reservation | None = None,
        intent: Intent | None = None,
    ) -> None:
        """Run the thread's worker (a second call only hands over the start-up intent)."""
        if intent is not None:
            self._intents[thread.id] = intent
        if thread.id in self._running or not thread.live:
            self._settle_intent(thread)
            return
        if reservation is not None:
            self._reservations[thread.id] = reservation
        task = self._tasks.spawn(self._run(thread), name=f"thread-{thread.id}")
        self._running[thread.id] = task
        task.add_done_callback(lambda _done: self._running.pop(thread.id, None))

    async def cancel(self, thread_id: str) -> None:
        """End the thread's worker and its start-up (a spawn under way is undone by the
        spawner): the thread is being stopped."""
        task = self._running.get(thread_id)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        spawn = self._spawns.get(thread_id)
        if spawn is not None:
            spawn.cancel()  # the spawner removes what it made
            await asyncio.gather(spawn, return_exceptions=True)
        left = self._reservations.pop(thread_id, None)
        if left is not None:
            # Cancelled before it began: nothing was made, the reservation is let go.
            await self._spawner.abandon(left)
        intent = self._intents.pop(thread_id, None)
        if intent is not None:
            self._journal.end(intent)

    async def stop(self) -> None:
        """The service is stopping: spawns under way may finish (bounded), the rest waits for
        the next start (recovery hands each thread's start-up back)."""
        spawns = list(self._spawns.values())
        if spawns:
            await asyncio.wait(spawns, timeout=self._spawn_grace_s)
        await self._tasks.stop()
        for spawn in spawns:
            spawn.cancel()
        await asyncio.gather(*spawns, return_exceptions=True)

    # -- the worker -------------------------------------------------------------------------

    async def _run(self, thread: ThreadRecord) -> None:
        reservation = self._reservations.pop(thread.id, None)
        if reservation is not None:
            await self._spawn(thread, reservation)
        while thread.live:
            if not await self._step(thread):
                self._settle_intent(thread)
                await self._book.wait(thread.id)
        self._settle_intent(thread)

    async def _spawn(self, thread: ThreadRecord, reservation: Reservation) -> None:
        # Its own task: a stopping service lets it finish while the worker is let go.
        job: asyncio.Future[object] = asyncio.ensure_future(self._spawner.complete(reservation))
        self._spawns[thread.id] = job
        job.add_done_callback(lambda _done: self._spawns.pop(thread.id, None))
        try:
            await asyncio.shield(job)
        except ParallaxError as exc:
            self._book.commit(
                thread, record.spawn_failed(thread, exc.message, exc.code, self._clock())
            )

    async def _step(self, thread: ThreadRecord) -> bool:
        """Do the next thing the thread needs, if it can now; False to wait for a change."""
        agent = self._registry.find(thread.spec.agent_id)
        if agent is None:
            # Before its start-up is done the thread's spawn was cut short (its secret env is
            # not kept anywhere to make the agent again); after it, the agent was removed.
            reason = "removed" if thread.primed else SPAWN_INTERRUPTED
            self._book.commit(thread, record.agent_gone(thread, reason, self._clock()))
            return True
        if agent.transitioning:
            await agent.settled.wait()
            return True
        in_flight = self._messaging.busy_agents.get(agent.id)
        if in_flight is not None:
            await asyncio.wait({in_flight})
            return True
        if thread.stopping or not self._takes_work(agent):
            return False
        if thread.turn_id is not None:
            # Nothing runs in the agent, no recovery is answering: the answer was lost.
            record.turn_lost(thread, self._clock())
            self._book.commit(thread)
            return True
        if not thread.files_written:
            await self._write_files(thread, agent)
            return True
        if not thread.objective_done:
            return self._start_turn(thread, thread.spec.objective, objective=True)
        if thread.inputs:
            item = record.input_taken(thread)
            if self._start_turn(thread, item.message, item=item):
                return True
            record.input_returned(thread, item)
        return False

    def _takes_work(self, agent: AgentRecord) -> bool:
        return (
            agent.status in _TAKES_WORK
            and agent.container_id is not None
            and not agent.busy
            and not agent.in_operation
            and not self._journal.owned("turn", agent.id)
        )

    async def _write_files(self, thread: ThreadRecord, agent: AgentRecord) -> None:
        if agent.container_id is None:
            return
        try:
            await write_context_files(self._backend, agent.container_id, thread.files)
        except ParallaxError as exc:
            # The objective would run without what it was prepared with: it is not run.
            events = record.preparation_failed(thread, exc.message, exc.code, self._clock())
            self._book.commit(thread, events)
            return
        record.files_written(thread, self._clock())
        self._note(thread, step="prepared")
        self._book.commit(thread)

    def _start_turn(
        self,
        thread: ThreadRecord,
        message: str,
        *,
        objective: bool = False,
        item: QueuedInput | None = None,
    ) -> bool:
        metadata = {**(item.metadata if item else {}), "threadId": thread.id}
        metadata["threadTurn"] = OBJECTIVE if objective else INPUT
        try:
            turn_id = self._messaging.start(thread.spec.agent_id, message, metadata=metadata)
        except ParallaxError as exc:
            log.info("thread %s waits to start a turn: %s", thread.id, exc.code)
            return False
        record.turn_begun(thread, turn_id, self._clock(), objective=objective, item=item)
        if objective:
            self._note(thread, step="objective", objectiveTurn=turn_id)
        self._book.commit(thread)
        return True

    # -- the start-up intent ----------------------------------------------------------------

    def _note(self, thread: ThreadRecord, **data: str) -> None:
        intent = self._intents.get(thread.id)
        if intent is not None:
            step = data.pop("step", None)
            self._journal.note(intent, step=step, **data)

    def _settle_intent(self, thread: ThreadRecord) -> None:
        """The start-up is over once the objective is answered or the thread has ended."""
        if thread.live and not thread.objective_done:
            return
        intent = self._intents.pop(thread.id, None)
        if intent is not None:
            self._journal.end(intent)
