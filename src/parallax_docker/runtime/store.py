"""The embedded store: conversations, the event history, each agent's CLI session id, threads.

SQLite in ``<PARALLAX_STATE_DIR>/parallax.db``, so that ``GET /agents/{id}/messages``, late
WebSocket clients' history and session resume all survive a restart of the service. Every
statement runs on one dedicated thread, in the order it was asked for: the event loop never
waits on the disk, and a read submitted after a write sees it. Events are submitted at the
moment they are published (``StoredEventBus``), so history and live events meet without a gap.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from parallax_docker.errors import ConfigError
from parallax_docker.runtime.events import EventBus, RuntimeEvent

log = logging.getLogger(__name__)

T = TypeVar("T")

DB_NAME = "parallax.db"
SCHEMA_VERSION = 1
# The event history is a rolling window; conversations keep this many messages per agent.
MAX_EVENTS = 10_000
MAX_MESSAGES_PER_AGENT = 2_000
# A message event keeps at most this much of its content in the history (the conversation
# itself, GET /agents/{id}/messages, keeps all of it).
EVENT_CONTENT_MAX = 64 * 1024
_PRUNE_EVERY = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    agent_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    type TEXT NOT NULL,
    content TEXT NOT NULL,
    metadata TEXT NOT NULL,
    timestamp REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_agent ON messages (agent_id, seq);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL,
    agent_id TEXT,
    data TEXT NOT NULL,
    timestamp REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_agent ON events (agent_id, seq);
CREATE TABLE IF NOT EXISTS sessions (
    agent_id TEXT PRIMARY KEY,
    driver TEXT NOT NULL,
    session_id TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS threads (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    updated REAL NOT NULL
);
"""


@dataclass(frozen=True)
class StoredMessage:
    """One message of a conversation, to or from an agent."""

    id: str
    agent_id: str
    direction: str  # inbound (to the agent) or outbound (from it)
    type: str  # task, response, error, ...
    content: str
    timestamp: float
    metadata: dict[str, Any] = field(default_factory=dict)


class Store:
    """The SQLite store behind a small async interface (one writer thread, FIFO)."""

    def __init__(
        self,
        path: Path | str,
        *,
        max_messages_per_agent: int = MAX_MESSAGES_PER_AGENT,
        max_events: int = MAX_EVENTS,
    ) -> None:
        # ":memory:" keeps everything in memory (unit tests).
        self.path = str(path)
        self._max_messages = max_messages_per_agent
        self._max_events = max_events
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        self._events_since_prune = 0

    @classmethod
    def in_dir(cls, state_dir: Path) -> Store:
        return cls(state_dir / DB_NAME)

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parallax-store")
        try:
            await self._run(self._open)
        except (OSError, sqlite3.Error) as exc:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise ConfigError(
                f"cannot open the state store at {self.path}: {type(exc).__name__}",
                resolution="Point PARALLAX_STATE_DIR at a writable directory.",
            ) from None

    async def close(self) -> None:
        if self._executor is None:
            return
        try:
            await self._run(self._close)
        finally:
            self._executor.shutdown(wait=True)
            self._executor = None

    def _open(self) -> None:
        if self.path != ":memory:":
            folder = Path(self.path).parent
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
        db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._db = db

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        return asyncio.wrap_future(self._submit(fn, *args))

    def _submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        if self._executor is None:
            raise ConfigError("the state store is not open")
        return self._executor.submit(fn, *args)

    def _conn(self) -> sqlite3.Connection:
        assert threading.current_thread().name.startswith("parallax-store")
        if self._db is None:
            raise sqlite3.ProgrammingError("store closed")
        return self._db

    # -- messages ---------------------------------------------------------------------------

    async def add_message(self, message: StoredMessage) -> None:
        await self._run(self._add_message, message)

    def _add_message(self, message: StoredMessage) -> None:
        db = self._conn()
        db.execute(
            "INSERT INTO messages (id, agent_id, direction, type, content, metadata, timestamp)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                message.id,
                message.agent_id,
                message.direction,
                message.type,
                message.content,
                json.dumps(message.metadata, default=str),
                message.timestamp,
            ),
        )
        db.execute(
            "DELETE FROM messages WHERE agent_id = ? AND seq <= ("
            " SELECT seq FROM messages WHERE agent_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
            (message.agent_id, message.agent_id, self._max_messages),
        )

    async def messages(self, agent_id: str, limit: int = 100) -> list[StoredMessage]:
        """The last ``limit`` messages of one agent's conversation, oldest first."""
        return await self._run(self._messages, agent_id, limit)

    def _messages(self, agent_id: str, limit: int) -> list[StoredMessage]:
        rows = (
            self._conn()
            .execute(
                "SELECT id, agent_id, direction, type, content, metadata, timestamp FROM messages"
                " WHERE agent_id = ? ORDER BY seq DESC LIMIT ?",
                (agent_id, limit),
            )
            .fetchall()
        )
        return [
            StoredMessage(
                id=row[0],
                agent_id=row[1],
                direction=row[2],
                type=row[3],
                content=row[4],
                metadata=_json_object(row[5]),
                timestamp=row[6],
            )
            for row in reversed(rows)
        ]

    # -- events -----------------------------------------------------------------------------

    def record_event(self, event: RuntimeEvent) -> None:
        """Queue ``event`` for writing; returns at once (called from publish)."""
        if self._executor is None:
            return
        self._executor.submit(self._record_event, event).add_done_callback(_log_failure)

    def _record_event(self, event: RuntimeEvent) -> None:
        db = self._conn()
        db.execute(
            "INSERT INTO events (event, agent_id, data, timestamp) VALUES (?, ?, ?, ?)",
            (
                event.event,
                event.agent_id,
                json.dumps(_bounded(event.data), default=str),
                event.timestamp,
            ),
        )
        self._events_since_prune += 1
        if self._events_since_prune >= min(_PRUNE_EVERY, self._max_events):
            self._events_since_prune = 0
            db.execute(
                "DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ?",
                (self._max_events,),
            )

    def recent_events(
        self, agent_id: str | None, limit: int, event: str | None = None
    ) -> Awaitable[list[RuntimeEvent]]:
        """The last ``limit`` events (of one agent, or all; of one kind, or all), oldest first.

        The read is queued when this is called, not when it is awaited: every event published
        before the call is in the answer, and none published after it.
        """
        return asyncio.wrap_future(self._submit(self._recent_events, agent_id, limit, event))

    def _recent_events(
        self, agent_id: str | None, limit: int, event: str | None = None
    ) -> list[RuntimeEvent]:
        db = self._conn()
        select = "SELECT event, agent_id, data, timestamp FROM events"
        if agent_id is None and event is None:
            cursor = db.execute(f"{select} ORDER BY seq DESC LIMIT ?", (limit,))
        elif event is None:
            cursor = db.execute(
                f"{select} WHERE agent_id = ? ORDER BY seq DESC LIMIT ?", (agent_id, limit)
            )
        elif agent_id is None:
            cursor = db.execute(
                f"{select} WHERE event = ? ORDER BY seq DESC LIMIT ?", (event, limit)
            )
        else:
            cursor = db.execute(
                f"{select} WHERE agent_id = ? AND event = ? ORDER BY seq DESC LIMIT ?",
                (agent_id, event, limit),
            )
        return [
            RuntimeEvent(event=row[0], agent_id=row[1], data=_json_object(row[2]), timestamp=row[3])
            for row in reversed(cursor.fetchall())
        ]

    # -- CLI sessions -----------------------------------------------------------------------

    async def session(self, agent_id: str, driver: str) -> str | None:
        """The CLI session id to resume for ``agent_id`` (None: start a new one)."""
        return await self._run(self._session, agent_id, driver)

    def _session(self, agent_id: str, driver: str) -> str | None:
        row = (
            self._conn()
            .execute(
                "SELECT session_id FROM sessions WHERE agent_id = ? AND driver = ?",
                (agent_id, driver),
            )
            .fetchone()
        )
        return None if row is None else str(row[0])

    async def set_session(
        self, agent_id: str, driver: str, session_id: str | None, now: float
    ) -> None:
        await self._run(self._set_session, agent_id, driver, session_id, now)

    def _set_session(self, agent_id: str, driver: str, session_id: str | None, now: float) -> None:
        db = self._conn()
        if session_id is None:
            db.execute("DELETE FROM sessions WHERE agent_id = ?", (agent_id,))
        else:
            db.execute(
                "INSERT INTO sessions (agent_id, driver, session_id, updated) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (agent_id) DO UPDATE SET driver = excluded.driver,"
                " session_id = excluded.session_id, updated = excluded.updated",
                (agent_id, driver, session_id, now),
            )

    # -- threads ----------------------------------------------------------------------------

    def save_thread(self, thread_id: str, data: dict[str, Any], now: float) -> Future[None]:
        """Queue a thread's state for writing, in order with every other write; the future says
        when it is on disk (a caller that must know waits for it)."""
        return self._submit(self._save_thread, thread_id, data, now)

    def _save_thread(self, thread_id: str, data: dict[str, Any], now: float) -> None:
        self._conn().execute(
            "INSERT INTO threads (id, data, updated) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE"
            " SET data = excluded.data, updated = excluded.updated",
            (thread_id, json.dumps(data, default=str), now),
        )

    def drop_thread(self, thread_id: str) -> Awaitable[None]:
        return asyncio.wrap_future(self._submit(self._drop_thread, thread_id))

    def _drop_thread(self, thread_id: str) -> None:
        self._conn().execute("DELETE FROM threads WHERE id = ?", (thread_id,))

    async def threads(self) -> list[dict[str, Any]]:
        """Every kept thread's state, oldest first."""
        return await self._run(self._threads)

    def _threads(self) -> list[dict[str, Any]]:
        rows = self._conn().execute("SELECT data FROM threads ORDER BY rowid").fetchall()
        return [_json_object(row[0]) for row in rows]


class StoredEventBus(EventBus):
    """The event bus whose every event is also written to the store, in publish order."""

    def __init__(self, store: Store, history: int = 32, queue_size: int = 256) -> None:
        # The store serves history; the in-memory window only needs the latest event.
        super().__init__(history=history, queue_size=queue_size)
        self.store = store

    def publish(self, event: str, data: dict[str, Any], agent_id: str | None = None) -> None:
        super().publish(event, data, agent_id)
        # The event just appended to the in-memory history is the one to write.
        for latest in self.recent(None, 1):
            self.store.record_event(latest)


def _bounded(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with a message's content cut to EVENT_CONTENT_MAX (and marked so)."""
    message = data.get("message")
    if not isinstance(message, dict):
        return data
    content = message.get("content")
    if not isinstance(content, str) or len(content) <= EVENT_CONTENT_MAX:
        return data
    cut = {**message, "content": content[:EVENT_CONTENT_MAX], "contentTruncated": True}
    return {**data, "message": cut}


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _log_failure(future: Future[None]) -> None:
    exc = future.exception()
    if exc is not None:
        log.warning("could not record an event: %s", type(exc).__name__)
