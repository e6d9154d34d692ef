"""The SQLite store: conversations, the event history and CLI session ids (no engine)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from parallax_docker.errors import ConfigError
from parallax_docker.runtime.events import RuntimeEvent
from parallax_docker.runtime.store import EVENT_CONTENT_MAX, Store, StoredEventBus, StoredMessage


def message(agent_id: str, number: int, direction: str = "inbound") -> StoredMessage:
    return StoredMessage(
        id=f"msg-{agent_id}-{number}",
        agent_id=agent_id,
        direction=direction,
        type="task",
        content=f"content {number}: 'quotes' $(x) ✓\n",
        timestamp=1000.0 + number,
        metadata={"turnId": f"turn-{number}", "nested": {"n": number}},
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = Store.in_dir(tmp_path / "state")
    await opened.open()
    yield opened
    await opened.close()


async def test_messages_come_back_oldest_first_with_their_fields(store: Store) -> None:
    for number in range(3):
        await store.add_message(message("a", number))
    await store.add_message(message("b", 9))
    found = await store.messages("a", limit=10)
    assert found == [message("a", n) for n in range(3)]


async def test_messages_limit_keeps_the_most_recent(store: Store) -> None:
    for number in range(5):
        await store.add_message(message("a", number))
    assert [m.id for m in await store.messages("a", limit=2)] == ["msg-a-3", "msg-a-4"]


async def test_each_agent_keeps_at_most_its_cap_of_messages(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite", max_messages_per_agent=3)
    await store.open()
    try:
        for number in range(5):
            await store.add_message(message("a", number))
        await store.add_message(message("b", 0))
        assert [m.id for m in await store.messages("a", 10)] == [f"msg-a-{n}" for n in (2, 3, 4)]
        assert len(await store.messages("b", 10)) == 1
    finally:
        await store.close()


async def test_a_megabyte_message_is_kept_whole(store: Store) -> None:
    big = StoredMessage(
        id="msg-big", agent_id="a", direction="outbound", type="response",
        content="x" * (1024 * 1024), timestamp=1.0,
    )  # fmt: skip
    await store.add_message(big)
    assert (await store.messages("a", 1)) == [big]


async def test_everything_survives_closing_and_opening_again(tmp_path: Path) -> None:
    first = Store.in_dir(tmp_path)
    await first.open()
    await first.add_message(message("a", 1))
    first.record_event(RuntimeEvent("agent_ready", {"agent": {"id": "a"}}, 5.0, "a"))
    await first.set_session("a", "claude", "session-1", now=1.0)
    await first.close()
    second = Store.in_dir(tmp_path)
    await second.open()
    try:
        assert await second.messages("a", 10) == [message("a", 1)]
        assert await second.recent_events("a", 10) == [
            RuntimeEvent("agent_ready", {"agent": {"id": "a"}}, 5.0, "a")
        ]
        assert await second.session("a", "claude") == "session-1"
    finally:
        await second.close()


async def test_the_database_file_is_private(tmp_path: Path) -> None:
    store = Store.in_dir(tmp_path / "state")
    await store.open()
    await store.close()
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "state" / "parallax.db").stat().st_mode & 0o777 == 0o600


async def test_recent_events_filter_by_agent_and_keep_the_last(store: Store) -> None:
    for number in range(6):
        agent = "a" if number % 2 == 0 else "b"
        store.record_event(RuntimeEvent(f"e{number}", {"n": number}, float(number), agent))
    store.record_event(RuntimeEvent("global", {}, 9.0, None))
    assert [e.event for e in await store.recent_events("a", 2)] == ["e2", "e4"]
    assert [e.event for e in await store.recent_events(None, 3)] == ["e4", "e5", "global"]


async def test_recent_events_answer_as_of_the_call_not_the_await(store: Store) -> None:
    store.record_event(RuntimeEvent("before", {}, 1.0, "a"))
    pending = store.recent_events("a", 10)
    store.record_event(RuntimeEvent("after", {}, 2.0, "a"))
    assert [e.event for e in await pending] == ["before"]


async def test_the_event_history_is_a_rolling_window(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite", max_events=4)
    await store.open()
    try:
        for number in range(10):
            store.record_event(RuntimeEvent(f"e{number}", {}, float(number), "a"))
        kept = await store.recent_events("a", 100)
        assert 4 <= len(kept) < 10
        assert kept[-1].event == "e9"
    finally:
        await store.close()


async def test_sessions_are_kept_per_agent_and_driver(store: Store) -> None:
    assert await store.session("a", "claude") is None
    await store.set_session("a", "claude", "s1", now=1.0)
    await store.set_session("a", "claude", "s2", now=2.0)
    assert await store.session("a", "claude") == "s2"
    assert await store.session("a", "codex") is None
    await store.set_session("a", "claude", None, now=3.0)
    assert await store.session("a", "claude") is None


async def test_the_stored_bus_writes_every_published_event_in_order(store: Store) -> None:
    bus = StoredEventBus(store)
    subscription = bus.subscribe("a")
    bus.publish("agent_busy", {"agent": {"id": "a"}}, agent_id="a")
    bus.publish("agent_ready", {"agent": {"id": "a"}}, agent_id="a")
    live = [await subscription.get(), await subscription.get()]
    assert await store.recent_events("a", 10) == live


async def test_a_store_that_cannot_be_opened_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError) as caught:
        await Store.in_dir(blocker / "state").open()
    assert "PARALLAX_STATE_DIR" in caught.value.resolution


async def test_an_unopened_store_drops_events_and_refuses_reads() -> None:
    store = Store(":memory:")
    store.record_event(RuntimeEvent("x", {}, 1.0, None))  # nothing to write to; no error
    with pytest.raises(ConfigError):
        await store.messages("a", 1)


async def test_history_keeps_a_bounded_slice_of_a_huge_message_event(store: Store) -> None:
    content = "y" * (EVENT_CONTENT_MAX + 10)
    data = {"message": {"id": "m", "agentId": "a", "content": content}}
    store.record_event(RuntimeEvent("message", data, 1.0, "a"))
    (kept,) = await store.recent_events("a", 1)
    assert kept.data["message"]["content"] == content[:EVENT_CONTENT_MAX]
    assert kept.data["message"]["contentTruncated"] is True
    assert data["message"]["content"] == content  # the live event is untouched
