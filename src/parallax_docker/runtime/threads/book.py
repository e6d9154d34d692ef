"""The threads the runtime knows, and what every change of one goes through.

``commit`` is the one way a thread's change leaves the process: its events go to the one
``Publisher`` and its record to the store (in order, on the store's writer thread), and the
thread's worker is woken to look at it. Ids are reserved here before any await, so that two
spawns of one thread cannot both pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import Any

from parallax_docker.errors import ConfigError, ConflictError, ThreadNotFoundError
from parallax_docker.runtime.events import AgentEvent, Publisher
from parallax_docker.runtime.store import Store
from parallax_docker.runtime.threads.persist import to_json
from parallax_docker.runtime.threads.record import ThreadRecord
from parallax_docker.thread_models import ApprovalPreset

log = logging.getLogger(__name__)


class ThreadBook:
    def __init__(self, store: Store, publisher: Publisher) -> None:
        self._store = store
        self._publisher = publisher
        self._by_id: dict[str, ThreadRecord] = {}
        self._reserved: set[str] = set()
        self._wakes: dict[str, asyncio.Event] = {}

    def __iter__(self) -> Iterator[ThreadRecord]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, thread_id: str) -> ThreadRecord:
        thread = self._by_id.get(thread_id)
        if thread is None:
            raise ThreadNotFoundError(f"thread {thread_id[:80]!r} does not exist")
        return thread

    def find(self, thread_id: str) -> ThreadRecord | None:
        return self._by_id.get(thread_id)

    def reserve(self, thread_id: str) -> None:
        if thread_id in self._by_id or thread_id in self._reserved:
            raise ConflictError(f"a thread with id {thread_id!r} already exists")
        self._reserved.add(thread_id)

    def release(self, thread_id: str) -> None:
        self._reserved.discard(thread_id)

    def put(self, thread: ThreadRecord) -> None:
        self._reserved.discard(thread.id)
        self._by_id[thread.id] = thread

    async def drop(self, thread_id: str) -> None:
        self._by_id.pop(thread_id, None)
        self._wakes.pop(thread_id, None)
        await self._store.drop_thread(thread_id)

    def preset_of(self, agent_id: str) -> ApprovalPreset:
        """The approval preset the agent's turns run under (agents outside threads: autonomous)."""
        thread = self._by_id.get(agent_id)
        return thread.spec.approval_preset if thread is not None else ApprovalPreset.AUTONOMOUS

    # -- changes ----------------------------------------------------------------------------

    def commit(self, thread: ThreadRecord, events: Iterable[AgentEvent] = ()) -> None:
        """Publish the change's events, keep the record, wake the thread's worker."""
        self._publisher.publish(events)
        self._save(thread).add_done_callback(_log_failure)
        self.wake(thread.id)

    async def commit_now(self, thread: ThreadRecord, events: Iterable[AgentEvent] = ()) -> None:
        """``commit``, returning once the record is on disk (an input acknowledged to a caller,
        a new thread before its agent is made)."""
        self._publisher.publish(events)
        await asyncio.wrap_future(self._save(thread))
        self.wake(thread.id)

    def _save(self, thread: ThreadRecord) -> Future[None]:
        done: Future[None] = Future()
        if thread.id not in self._by_id:
            done.set_result(None)  # dropped meanwhile: nothing to keep
            return done
        try:
            return self._store.save_thread(thread.id, to_json(thread), thread.updated_at)
        except ConfigError as exc:  # the store is closed (the service is stopping)
            done.set_exception(exc)
            return done

    # -- workers' wake-ups ------------------------------------------------------------------

    def wake(self, thread_id: str) -> None:
        self._wake_event(thread_id).set()

    async def wait(self, thread_id: str) -> None:
        """Until the next change of the thread (or of its agent)."""
        event = self._wake_event(thread_id)
        await event.wait()
        event.clear()

    def _wake_event(self, thread_id: str) -> asyncio.Event:
        event = self._wakes.get(thread_id)
        if event is None:
            event = self._wakes[thread_id] = asyncio.Event()
        return event


def _log_failure(future: Future[Any]) -> None:
    if future.cancelled():
        return
    exc = future.exception()
    if exc is not None:
        log.warning("could not keep a thread's state: %s", type(exc).__name__)
