"""The service's event bus (parallax_docker.runtime.events)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import cast

import pytest

from parallax_docker.runtime.events import EventBus, RuntimeEvent, Subscription


async def next_event(subscription: Subscription) -> RuntimeEvent:
    return await asyncio.wait_for(subscription.get(), timeout=1)


async def assert_empty(subscription: Subscription) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(subscription.get(), timeout=0.01)


async def test_publish_reaches_every_subscriber() -> None:
    bus = EventBus()
    first, second = bus.subscribe(), bus.subscribe()
    bus.publish("agent_ready", {"n": 1}, agent_id="a")
    assert (await next_event(first)).data == {"n": 1}
    assert (await next_event(second)).data == {"n": 1}


async def test_subscribers_receive_events_in_publish_order() -> None:
    bus = EventBus()
    subscription = bus.subscribe()
    for number in range(3):
        bus.publish("e", {"n": number})
    assert [(await next_event(subscription)).data["n"] for _ in range(3)] == [0, 1, 2]


async def test_an_agent_subscription_receives_only_that_agents_events() -> None:
    bus = EventBus()
    subscription = bus.subscribe(agent_id="a")
    bus.publish("agent_ready", {}, agent_id="b")
    bus.publish("agent_ready", {}, agent_id=None)
    bus.publish("agent_error", {}, agent_id="a")
    event = await next_event(subscription)
    assert (event.event, event.agent_id) == ("agent_error", "a")
    await assert_empty(subscription)


async def test_a_full_queue_drops_the_oldest_event() -> None:
    bus = EventBus(queue_size=2)
    subscription = bus.subscribe()
    for number in range(3):
        bus.publish("e", {"n": number})
    assert [(await next_event(subscription)).data["n"] for _ in range(2)] == [1, 2]


async def test_a_full_queue_counts_the_events_it_dropped() -> None:
    bus = EventBus(queue_size=2)
    subscription = bus.subscribe()
    for number in range(5):
        bus.publish("e", {"n": number})
    assert subscription.dropped == 3


async def test_a_slow_subscriber_does_not_hold_back_a_fast_one() -> None:
    bus = EventBus(queue_size=1)
    slow, fast = bus.subscribe(), bus.subscribe()
    bus.publish("e", {"n": 0})
    assert (await next_event(fast)).data["n"] == 0
    bus.publish("e", {"n": 1})
    assert (await next_event(fast)).data["n"] == 1
    assert (slow.dropped, fast.dropped) == (1, 0)


async def test_a_closed_subscription_receives_nothing_more() -> None:
    bus = EventBus()
    subscription = bus.subscribe()
    subscription.close()
    bus.publish("e", {})
    await assert_empty(subscription)


def test_recent_returns_the_history_oldest_first() -> None:
    bus = EventBus()
    for number in range(3):
        bus.publish("e", {"n": number})
    assert [e.data["n"] for e in bus.recent()] == [0, 1, 2]


def test_recent_keeps_only_the_configured_history() -> None:
    bus = EventBus(history=2)
    for number in range(5):
        bus.publish("e", {"n": number})
    assert [e.data["n"] for e in bus.recent()] == [3, 4]


def test_recent_filters_by_agent() -> None:
    bus = EventBus()
    bus.publish("e", {"n": 0}, agent_id="a")
    bus.publish("e", {"n": 1}, agent_id="b")
    bus.publish("e", {"n": 2}, agent_id="a")
    assert [e.data["n"] for e in bus.recent(agent_id="a")] == [0, 2]


def test_recent_returns_at_most_the_limit_newest_last() -> None:
    bus = EventBus()
    for number in range(5):
        bus.publish("e", {"n": number})
    assert [e.data["n"] for e in bus.recent(limit=2)] == [3, 4]


def test_recent_holds_events_published_before_anyone_subscribed() -> None:
    bus = EventBus()
    bus.publish("e", {})
    assert len(bus.recent()) == 1


def test_frame_has_event_data_and_timestamp() -> None:
    event = RuntimeEvent(event="agent_ready", data={"x": 1}, timestamp=12.5, agent_id="a")
    assert event.frame() == {"event": "agent_ready", "data": {"x": 1}, "timestamp": 12.5}


async def test_stream_yields_published_events_for_its_agent() -> None:
    bus = EventBus()
    stream = cast(AsyncGenerator[RuntimeEvent, None], bus.stream(agent_id="a"))
    try:
        pending = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)
        bus.publish("e", {"n": 0}, agent_id="b")
        bus.publish("e", {"n": 1}, agent_id="a")
        event = await asyncio.wait_for(pending, timeout=1)
    finally:
        await stream.aclose()
    assert event.data == {"n": 1}


async def test_stream_unsubscribes_when_closed() -> None:
    bus = EventBus()
    stream = cast(AsyncGenerator[RuntimeEvent, None], bus.stream())
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    bus.publish("e", {})
    await asyncio.wait_for(pending, timeout=1)
    await stream.aclose()
    assert bus._subscribers == set()
