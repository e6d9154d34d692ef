"""What the agents do, applied to their threads: the runtime's events and the turns' output.

``hear`` listens to the one ``Publisher`` (every event, in order, none dropped) and turns the
events of a thread's agent into the thread's transitions: its start and readiness, each answer
of a turn, a crash, its end. ``output`` reads a running turn's stdout as it arrives for what the
CLI's structured events tell (a tool starting, a permission refused). The transitions' events go
out through the book, which also wakes the thread's worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from parallax_docker.runtime.drivers.progress import (
    ProgressReader,
    PromptRefused,
    ToolRunning,
    progress_reader,
)
from parallax_docker.runtime.events import AgentEvent
from parallax_docker.runtime.threads import record
from parallax_docker.runtime.threads.book import ThreadBook
from parallax_docker.runtime.threads.record import THREAD_EVENT, ThreadRecord


class Follower:
    def __init__(self, book: ThreadBook, clock: Callable[[], float] = time.time) -> None:
        self._book = book
        self._clock = clock
        # One reader per agent's running turn: (turn id, reader).
        self._readers: dict[str, tuple[str, ProgressReader | None]] = {}

    def hear(self, event: AgentEvent) -> None:
        if event.event == THREAD_EVENT or event.agent_id is None:
            return
        thread = self._book.find(event.agent_id)
        if thread is None:
            return
        now = self._clock()
        events = self._transition(thread, event.event, event.data, now)
        self._book.commit(thread, events)

    def _transition(
        self, thread: ThreadRecord, name: str, data: dict[str, Any], now: float
    ) -> list[AgentEvent]:
        if name == "agent_started":
            return record.agent_started(thread, now, data.get("reason"))
        if name == "agent_ready":
            record.agent_ready(thread, now)
            return []
        if name == "message":
            return self._message(thread, data.get("message") or {}, now)
        if name == "agent_error":
            agent = data.get("agent") or {}
            error = str(data.get("error") or agent.get("error") or "the agent failed")
            return record.agent_failed(thread, error, agent.get("errorCode"), now)
        if name == "agent_stopped":
            self._readers.pop(thread.id, None)
            exit_code = data.get("exitCode")
            return record.agent_gone(
                thread,
                str(data.get("reason") or "stopped"),
                now,
                exit_code=exit_code if isinstance(exit_code, int) else None,
                error=data.get("error"),
            )
        return []

    def _message(
        self, thread: ThreadRecord, message: dict[str, Any], now: float
    ) -> list[AgentEvent]:
        turn_id = (message.get("metadata") or {}).get("turnId")
        if message.get("direction") == "inbound":
            if isinstance(turn_id, str) and thread.turn_id is None:
                # A turn someone started through the agent's own route: the thread runs it too.
                record.turn_begun(thread, turn_id, now)
            return []
        events: list[AgentEvent] = []
        if message.get("type") == "response":
            events += record.said(thread, message, now)
        events += record.answered(thread, message, now)
        return events

    def output(self, agent_id: str, turn_id: str, data: bytes) -> None:
        """A piece of a running turn's stdout (messaging's ``on_output``)."""
        thread = self._book.find(agent_id)
        if thread is None or not thread.live:
            return
        known = self._readers.get(agent_id)
        if known is None or known[0] != turn_id:
            known = (turn_id, progress_reader(thread.spec.agent_type))
            self._readers[agent_id] = known
        reader = known[1]
        if reader is None:
            return
        now = self._clock()
        for item in reader.feed(data):
            if isinstance(item, ToolRunning):
                events = record.tool_running(thread, turn_id, item.info(), now)
            elif isinstance(item, PromptRefused):
                events = record.prompt_denied(thread, turn_id, item.prompt(), now)
            self._book.commit(thread, events)
