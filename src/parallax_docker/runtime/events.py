"""The runtime's events: what happened (``AgentEvent``), the one ``Publisher`` that sends them,
and the bus that fans them out to any number of subscribers.

Each subscriber has a bounded queue; one that falls behind loses its oldest events and is told
how many, so a slow consumer never stalls the publisher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentEvent:
    """Something that happened to an agent (or, without ``agent_id``, to the runtime)."""

    event: str
    data: dict[str, Any]
    agent_id: str | None = None


@dataclass(frozen=True)
class RuntimeEvent:
    event: str
    data: dict[str, Any]
    timestamp: float = field(default_factory=time.time)
    agent_id: str | None = None

    def frame(self) -> dict[str, Any]:
        return {"event": self.event, "data": self.data, "timestamp": self.timestamp}


class Subscription:
    def __init__(self, bus: EventBus, agent_id: str | None, maxsize: int) -> None:
        self._bus = bus
        self.agent_id = agent_id
        self._queue: asyncio.Queue[RuntimeEvent] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, event: RuntimeEvent) -> None:
        if self.agent_id is not None and event.agent_id != self.agent_id:
            return
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def get(self) -> RuntimeEvent:
        return await self._queue.get()

    def close(self) -> None:
        self._bus.unsubscribe(self)


class EventBus:
    def __init__(self, history: int = 256, queue_size: int = 1024) -> None:
        self._subscribers: set[Subscription] = set()
        self._history: deque[RuntimeEvent] = deque(maxlen=history)
        self._queue_size = queue_size

    def publish(self, event: str, data: dict[str, Any], agent_id: str | None = None) -> None:
        item = RuntimeEvent(event=event, data=data, agent_id=agent_id)
        self._history.append(item)
        for subscriber in list(self._subscribers):
            subscriber.offer(item)

    def subscribe(self, agent_id: str | None = None) -> Subscription:
        subscription = Subscription(self, agent_id, self._queue_size)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def recent(self, agent_id: str | None = None, limit: int = 100) -> list[RuntimeEvent]:
        items = [e for e in self._history if agent_id is None or e.agent_id == agent_id]
        return items[-limit:]

    async def stream(self, agent_id: str | None = None) -> AsyncIterator[RuntimeEvent]:
        subscription = self.subscribe(agent_id)
        try:
            while True:
                yield await subscription.get()
        finally:
            subscription.close()


class Publisher:
    """The one way events leave the runtime: every part hands its events here.

    A listener (``listen``) hears every event right after it is on the bus, in order, before
    ``publish`` returns: a part that follows agents (threads) misses none, as a bounded
    subscription could. What a listener publishes itself goes out after the event it heard.
    """

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self._listeners: list[Callable[[AgentEvent], None]] = []

    def listen(self, listener: Callable[[AgentEvent], None]) -> None:
        self._listeners.append(listener)

    def publish(self, events: Iterable[AgentEvent]) -> None:
        for item in events:
            self.bus.publish(item.event, item.data, agent_id=item.agent_id)
            for listener in self._listeners:
                try:
                    listener(item)
                except Exception as exc:  # a follower's failure never fails the publisher
                    log.warning(
                        "an event listener failed on %s: %s", item.event, type(exc).__name__
                    )
