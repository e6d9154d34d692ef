"""A thread's state machine: its record and every named transition of it.

This module is the only writer of a ``ThreadRecord`` (a unit test checks it). Each transition
sets the record's status and flags together and returns the ``thread_event`` events that the
change means, which the caller hands to the one ``Publisher``. Nothing here does I/O.

A thread follows its agent: the agent's start (``thread_started``), its readiness (the thread
prepares, then runs its objective as the first turn), each turn's answer
(``thread_turn_complete``, ``thread_failed``, ``thread_auth_required``), and its end (a clean
exit completes the thread, a stop stops it, a crash fails it). ``thread_ready`` goes out exactly
once: after the first turn that answered, so that "ready" means primed and waiting for input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from parallax_docker.runtime.clock import iso_time
from parallax_docker.runtime.events import AgentEvent
from parallax_docker.runtime.messaging import LOGIN_REQUIRED, TURN_FAILED, TURN_INTERRUPTED
from parallax_docker.runtime.recovery import SPAWN_INTERRUPTED
from parallax_docker.runtime.threads.output import turn_complete_data
from parallax_docker.runtime.threads.spec import QueuedInput, ThreadSpec
from parallax_docker.thread_models import ThreadHandle, ThreadStatus

Events = list[AgentEvent]
THREAD_EVENT = "thread_event"
# What a thread_output event keeps of a message's content (the conversation keeps all of it).
MESSAGE_CONTENT_MAX = 64 * 1024


@dataclass
class ThreadRecord:
    """What the runtime knows of one thread. Read it anywhere; change it only here."""

    spec: ThreadSpec
    status: ThreadStatus
    updated_at: float
    last_activity_at: float | None = None
    summary: str | None = None
    completion: dict[str, str] | None = None
    error: str | None = None
    error_code: str | None = None
    started_sent: bool = False
    ready_sent: bool = False
    # Context files still to write ({path, content}); empty once written.
    files: tuple[dict[str, str], ...] = ()
    files_written: bool = False
    objective_turn: str | None = None
    objective_done: bool = False
    # The turn running in the agent now (the thread's own or anyone's), and the input it runs.
    turn_id: str | None = None
    current: QueuedInput | None = None
    turns: int = 0
    idle_checks: int = 0
    inputs: list[QueuedInput] = field(default_factory=list)
    stopping: bool = False
    # The agent crashed (it may come back: a restart makes the thread ready again).
    agent_down: bool = False
    # Set once the agent is gone for good: the thread is kept (listed) for a while, then dropped.
    ended_at: float | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def live(self) -> bool:
        return self.ended_at is None

    @property
    def primed(self) -> bool:
        return self.files_written and self.objective_done

    def handle(self) -> ThreadHandle:
        active = self.last_activity_at
        return ThreadHandle.model_validate(
            {
                **self.spec.handle_fields(),
                "status": self.status,
                "updatedAt": iso_time(self.updated_at),
                "lastActivityAt": iso_time(active) if active else None,
                "summary": self.summary,
                "completion": self.completion,
                "error": self.error,
                "errorCode": self.error_code,
            }
        )


def _emit(thread: ThreadRecord, kind: str, now: float, data: dict[str, Any]) -> AgentEvent:
    thread.updated_at = now
    body = {
        "threadId": thread.spec.id,
        "executionId": thread.spec.execution_id,
        "type": kind,
        "timestamp": iso_time(now),
        "data": data,
    }
    handle = thread.handle().model_dump(mode="json", by_alias=True, exclude_none=True)
    return AgentEvent(THREAD_EVENT, {"thread": handle, "event": body}, thread.spec.agent_id)


def _move(thread: ThreadRecord, status: ThreadStatus, now: float) -> None:
    thread.status = status
    thread.updated_at = now


def _active(thread: ThreadRecord, now: float) -> None:
    thread.last_activity_at = now
    thread.idle_checks = 0


# -- spawn and the agent's start ----------------------------------------------------------------


def spawned(spec: ThreadSpec, files: tuple[dict[str, str], ...], now: float) -> ThreadRecord:
    """A new thread whose agent is being spawned (its events follow the agent's)."""
    return ThreadRecord(
        spec=spec,
        status=ThreadStatus.STARTING,
        updated_at=now,
        last_activity_at=now,
        files=files,
        files_written=not files,
    )


def agent_started(thread: ThreadRecord, now: float, reason: str | None = None) -> Events:
    """The agent's container started (again, after a restart, when ``started_sent``)."""
    if not thread.live:
        return []
    data: dict[str, Any] = {"agentId": thread.spec.agent_id}
    if thread.started_sent:
        data["restarted"] = True
        data["reason"] = reason or "restarted"
    thread.started_sent = True
    return [_emit(thread, "thread_started", now, data)]


def agent_ready(thread: ThreadRecord, now: float) -> None:
    """The agent is ready: a thread not yet primed prepares; one that failed with its agent
    (a crash, then a restart) is ready for input again. (The agent is ready again after each
    turn too; a turn's failure stands.)"""
    if not thread.live or thread.turn_id is not None:
        return
    down, thread.agent_down = thread.agent_down, False
    if not thread.primed:
        _move(thread, ThreadStatus.PREPARING, now)
    elif down or thread.status in (ThreadStatus.STARTING, ThreadStatus.PREPARING):
        _move(thread, ThreadStatus.READY, now)


def files_written(thread: ThreadRecord, now: float) -> None:
    thread.files = ()
    thread.files_written = True
    thread.updated_at = now


def preparation_failed(thread: ThreadRecord, error: str, code: str, now: float) -> Events:
    """The context files could not be written: the objective is not run (the agent stays, and
    takes the thread's inputs)."""
    thread.files = ()
    thread.files_written = thread.objective_done = True
    thread.error, thread.error_code = error, code
    _move(thread, ThreadStatus.FAILED, now)
    return [_emit(thread, "thread_failed", now, {"error": error, "code": code})]


def spawn_failed(thread: ThreadRecord, error: str, code: str, now: float) -> Events:
    """The agent could not be made (nothing of it is left)."""
    if not thread.live:
        return []
    thread.ended_at = now
    thread.error, thread.error_code = error, code
    _move(thread, ThreadStatus.FAILED, now)
    return [_emit(thread, "thread_failed", now, {"error": error, "code": code})]


# -- input and turns ----------------------------------------------------------------------------


def input_queued(thread: ThreadRecord, item: QueuedInput, now: float) -> None:
    thread.inputs.append(item)
    _active(thread, now)
    thread.updated_at = now


def input_taken(thread: ThreadRecord) -> QueuedInput:
    return thread.inputs.pop(0)


def input_returned(thread: ThreadRecord, item: QueuedInput) -> None:
    """An input taken for a turn that could not start goes back to the front."""
    thread.inputs.insert(0, item)


def turn_begun(
    thread: ThreadRecord,
    turn_id: str,
    now: float,
    *,
    objective: bool = False,
    item: QueuedInput | None = None,
) -> None:
    thread.turn_id = turn_id
    thread.current = item
    if objective:
        thread.objective_turn = turn_id
    _active(thread, now)
    _move(thread, ThreadStatus.RUNNING, now)


def turn_lost(thread: ThreadRecord, now: float) -> None:
    """The thread's turn is not running and its answer will never come (a crash lost it
    between the answer and the thread's record): what it ran runs again."""
    if thread.turn_id is not None and thread.turn_id == thread.objective_turn:
        thread.objective_turn = None
    elif thread.current is not None:
        thread.inputs.insert(0, thread.current)
    thread.turn_id = thread.current = None
    _move(thread, ThreadStatus.READY if thread.primed else ThreadStatus.PREPARING, now)


def tool_running(thread: ThreadRecord, turn_id: str, info: dict[str, Any], now: float) -> Events:
    if not thread.live:
        return []
    _active(thread, now)
    _move(thread, ThreadStatus.RUNNING, now)
    return [_emit(thread, "thread_tool_running", now, {"turnId": turn_id, "info": info})]


def prompt_denied(thread: ThreadRecord, turn_id: str, prompt: dict[str, Any], now: float) -> Events:
    """The CLI would have asked a person (a permission the preset does not give); nobody can
    answer a headless turn, so the runtime's answer was no."""
    if not thread.live:
        return []
    _move(thread, ThreadStatus.BLOCKED, now)
    data = {"turnId": turn_id, "promptInfo": prompt, "autoResponded": True}
    return [_emit(thread, "thread_blocked", now, data)]


def said(thread: ThreadRecord, message: dict[str, Any], now: float) -> Events:
    """The agent said something (an answer message; its content cut as the history cuts it)."""
    if not thread.live:
        return []
    thread.last_activity_at = now
    content = message.get("content")
    if isinstance(content, str) and len(content) > MESSAGE_CONTENT_MAX:
        message = {**message, "content": content[:MESSAGE_CONTENT_MAX], "contentTruncated": True}
    return [_emit(thread, "thread_output", now, {"message": message})]


def objective_recovered(thread: ThreadRecord, turn_id: str) -> None:
    """After a crash: the objective's turn, as the start-up intent names it, is the one whose
    (interrupted) answer recovery is about to give."""
    if not thread.objective_done and thread.objective_turn is None:
        thread.objective_turn = thread.turn_id = turn_id


def answered(thread: ThreadRecord, message: dict[str, Any], now: float) -> Events:
    """A turn of the agent ended with ``message`` (a response, or an error with a code)."""
    metadata = message.get("metadata") or {}
    turn_id = metadata.get("turnId")
    current = None
    if turn_id is not None and thread.turn_id == turn_id:
        thread.turn_id, current, thread.current = None, thread.current, None
    objective = turn_id is not None and turn_id == thread.objective_turn
    if not thread.live:
        return []
    _active(thread, now)
    if message.get("type") == "response":
        return _completed_turn(thread, message, turn_id, objective, now)
    code = str(metadata.get("code") or TURN_FAILED)
    if thread.stopping:
        return []  # the stop cut the turn short: the stop is the news
    if code == TURN_INTERRUPTED and not metadata.get("requested") and (objective or current):
        # The service stopped (or crashed) in the middle of the turn: it runs again after.
        if objective:
            thread.objective_turn = None
        elif current is not None:
            thread.inputs.insert(0, current)
        _move(thread, ThreadStatus.READY if thread.primed else ThreadStatus.PREPARING, now)
        return []
    if objective:
        thread.objective_done = True
    error = str(message.get("content") or "the turn failed")
    thread.error, thread.error_code = error, code
    failed = {"turnId": turn_id, "error": error, "code": code}
    if code == LOGIN_REQUIRED:
        # Waiting for a person to log in (the agent's terminal); the turn itself failed.
        _move(thread, ThreadStatus.BLOCKED, now)
        auth = {"turnId": turn_id, "instructions": error, "url": metadata.get("loginUrl")}
        return [
            _emit(thread, "thread_auth_required", now, auth),
            _emit(thread, "thread_failed", now, failed),
        ]
    _move(thread, ThreadStatus.FAILED, now)
    return [_emit(thread, "thread_failed", now, failed)]


def _completed_turn(
    thread: ThreadRecord, message: dict[str, Any], turn_id: Any, objective: bool, now: float
) -> Events:
    data, summary = turn_complete_data(message, turn_id, objective)
    thread.turns += 1
    if objective:
        thread.objective_done = True
    if summary is not None:
        thread.summary = summary
        thread.completion = {"state": "partial", "summary": summary}
    thread.error = thread.error_code = None
    _move(thread, ThreadStatus.READY, now)
    events = [_emit(thread, "thread_turn_complete", now, data)]
    every = thread.spec.summarize_after_turns
    if every and thread.turns % every == 0 and thread.summary:
        summarized = {"summary": thread.summary, "turns": thread.turns}
        events.append(_emit(thread, "thread_summary_updated", now, summarized))
    if not thread.ready_sent:
        thread.ready_sent = True
        events.append(_emit(thread, "thread_ready", now, {}))
    return events


def went_idle(thread: ThreadRecord, now: float) -> Events:
    """No activity for the policy's idle timeout (once per timeout that passes)."""
    thread.idle_checks += 1
    _move(thread, ThreadStatus.IDLE, now)
    idle_ms = round((now - (thread.last_activity_at or now)) * 1000)
    data = {"idleMs": idle_ms, "checks": thread.idle_checks}
    return [_emit(thread, "thread_idle", now, data)]


# -- the agent's failures and end ---------------------------------------------------------------


def agent_failed(thread: ThreadRecord, error: str, code: str | None, now: float) -> Events:
    """The agent crashed, ran out of memory or turned unhealthy (it may be restarted)."""
    if not thread.live or thread.stopping:
        return []
    thread.turn_id = thread.current = None
    thread.agent_down = True
    thread.error, thread.error_code = error, code
    _move(thread, ThreadStatus.FAILED, now)
    return [_emit(thread, "thread_failed", now, {"error": error, "code": code})]


def stop_begun(thread: ThreadRecord) -> None:
    thread.stopping = True


def stop_failed(thread: ThreadRecord) -> None:
    thread.stopping = False


def agent_gone(
    thread: ThreadRecord,
    reason: str,
    now: float,
    *,
    exit_code: int | None = None,
    error: str | None = None,
) -> Events:
    """The agent is gone: its clean exit completes the thread, a spawn cut short fails it, any
    other end (a stop, the lifetime, an idle timeout, a removal) stops it."""
    if not thread.live:
        return []
    thread.ended_at = now
    thread.turn_id = thread.current = None
    if reason == "exited" and exit_code in (0, None) and not thread.stopping:
        summary = thread.summary or ""
        thread.completion = {"state": "complete", "summary": summary}
        _move(thread, ThreadStatus.COMPLETED, now)
        data = {"completion": thread.completion, "exitCode": exit_code}
        return [_emit(thread, "thread_completed", now, data)]
    if reason == SPAWN_INTERRUPTED:
        thread.error = error or "the spawn was cut short"
        thread.error_code = "SPAWN_INTERRUPTED"
        _move(thread, ThreadStatus.FAILED, now)
        failed = {"error": thread.error, "code": thread.error_code}
        return [_emit(thread, "thread_failed", now, failed)]
    _move(thread, ThreadStatus.STOPPED, now)
    return [_emit(thread, "thread_stopped", now, {"reason": reason, "exitCode": exit_code})]


def adopted(spec: ThreadSpec, status: ThreadStatus, now: float) -> ThreadRecord:
    """A thread rebuilt from its agent's labels alone (its store row was lost)."""
    return ThreadRecord(
        spec=spec,
        status=status,
        updated_at=now,
        started_sent=True,
        ready_sent=status != ThreadStatus.STARTING,
        files_written=True,
        objective_done=True,
    )
