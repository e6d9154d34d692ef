"""MessagingService: a message in, one turn of the agent's CLI, the answer out.

One turn per message, one turn at a time per agent: while a turn runs the agent is ``busy`` and
another ``send`` is refused with 409 ``AGENT_BUSY`` (docs/messaging.md). The turn itself runs in
runtime/turns.py. A turn past its timeout is interrupted and answered with a ``TURN_TIMEOUT``
error message; the agent stays usable. A CLI that says it needs a login puts the agent in
``authenticating`` and publishes ``login_required``. A turn cut short (the service stops, or
crashed: ``recover`` after the restart; or ``interrupt``, a thread's Ctrl-C) is answered with a
``TURN_INTERRUPTED`` error message holding what the CLI had said, and its CLI is ended. Threads
start turns with ``start`` and follow their output (``on_output``).

Messages go to the store and out as ``message`` events; the CLI session id is kept per agent (and
per execution) in the store so that the conversation resumes across turns and across restarts
of the service (runtime/sessions.py). Every answer carries the one result shape of
drivers/result.py in ``metadata.result``, with the files the turn changed under /workspace
(runtime/workspace_changes.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from parallax_docker.config import Settings
from parallax_docker.errors import (
    AgentBusyError,
    AgentNotFoundError,
    AgentStateError,
    ParallaxError,
)
from parallax_docker.models import AgentMessage, AgentStatus, SendResponse
from parallax_docker.runtime import lifecycle
from parallax_docker.runtime.conversation import (
    interrupted_on_request,
    message_id,
    message_model,
    said_before_cut,
)
from parallax_docker.runtime.drivers import Driver, driver_for
from parallax_docker.runtime.drivers.base import TurnResult
from parallax_docker.runtime.drivers.result import result_shape, turn_status
from parallax_docker.runtime.engine_link import EngineLink
from parallax_docker.runtime.events import AgentEvent, Publisher
from parallax_docker.runtime.journal import Intent, Journal
from parallax_docker.runtime.registry import Registry
from parallax_docker.runtime.sessions import Sessions
from parallax_docker.runtime.store import Store, StoredMessage
from parallax_docker.runtime.turns import KILL_EXEC_TIMEOUT_S, Turn, TurnRunner
from parallax_docker.thread_models import ApprovalPreset

log = logging.getLogger(__name__)

# Error codes a turn's answer can carry (metadata.code of a message of type "error").
TURN_TIMEOUT = "TURN_TIMEOUT"
TURN_FAILED = "TURN_FAILED"
TURN_INTERRUPTED = "TURN_INTERRUPTED"
LOGIN_REQUIRED = "LOGIN_REQUIRED"

_ACCEPTING = (AgentStatus.READY, AgentStatus.AUTHENTICATING)


class MessagingService:
    def __init__(
        self,
        *,
        settings: Settings,
        registry: Registry,
        engine: EngineLink,
        runner: TurnRunner,
        publisher: Publisher,
        journal: Journal,
        store: Store,
        drivers: Callable[[str], Driver] = driver_for,
        clock: Callable[[], float] = time.time,
        approval: Callable[[str], ApprovalPreset] = lambda _agent_id: ApprovalPreset.AUTONOMOUS,
        on_output: Callable[[str, str, bytes], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self._registry = registry
        self._engine = engine
        self._runner = runner
        self._publisher = publisher
        self._journal = journal
        self._drivers = drivers
        self._clock = clock
        # A thread's approval preset, and who follows its turns' output as it arrives.
        self._approval, self._on_output = approval, on_output
        self._turns: dict[str, asyncio.Task[AgentMessage]] = {}
        self._running: dict[str, Turn] = {}
        self._sessions = Sessions(store)

    @property
    def busy_agents(self) -> Mapping[str, asyncio.Task[AgentMessage]]:
        return self._turns

    # -- the API's operations ---------------------------------------------------------------

    async def send(
        self,
        agent_id: str,
        message: str,
        *,
        expect_response: bool,
        timeout_ms: int | None,
        metadata: Mapping[str, Any] | None = None,
    ) -> SendResponse:
        """Start a turn with ``message``; with ``expect_response``, wait for and return the answer.

        Refused (nothing sent) with 404, 409 ``AGENT_BUSY`` while a turn runs, 409 ``AGENT_STATE``
        unless it is ready (or authenticating), 503 without the engine. Once accepted, every
        outcome is an answer: a timeout, failure or login is an ``error`` with its code."""
        self.start(agent_id, message, timeout_ms=timeout_ms, metadata=metadata)
        if not expect_response:
            return SendResponse(sent=True)
        # Shielded: a client that hangs up does not cut the turn short.
        return SendResponse(sent=True, response=await asyncio.shield(self._turns[agent_id]))

    def start(
        self,
        agent_id: str,
        message: str,
        *,
        timeout_ms: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> str:
        """Start a turn (refused as ``send`` says) and return its id; nothing awaits in here.
        ``metadata`` goes with the task message (a thread marks its turns with it)."""
        self._engine.require()
        record = self._registry.get(agent_id)
        if record.busy or agent_id in self._turns:
            raise AgentBusyError(f"agent {agent_id!r} is working on another message")
        if record.status not in _ACCEPTING or record.container_id is None:
            raise AgentStateError(
                f"agent {agent_id!r} is {record.status.value}; it takes messages once ready"
            )
        timeout_s = self.settings.turn_timeout_s if timeout_ms is None else timeout_ms / 1000
        turn = Turn(
            id=f"turn-{secrets.token_hex(8)}",
            agent_id=agent_id,
            container_id=record.container_id,
            message=message,
            timeout_s=timeout_s,
            execution_id=record.labels.execution_id,
        )
        intent = self._journal.begin(
            "turn", agent_id, container_id=turn.container_id, turnId=turn.id
        )
        # From here to the task's creation nothing awaits: no second send can slip in.
        self._publisher.publish(lifecycle.turn_started(record, self._clock()))
        task = asyncio.create_task(
            self._run_turn(turn, intent, dict(metadata or {})), name=f"parallax-{turn.id}"
        )
        self._turns[agent_id] = task
        self._running[agent_id] = turn
        task.add_done_callback(lambda done: self._forget(agent_id, done))
        return turn.id

    async def interrupt(self, agent_id: str) -> bool:
        """End the turn running in ``agent_id`` (answered ``TURN_INTERRUPTED``); False if none."""
        turn, task = self._running.get(agent_id), self._turns.get(agent_id)
        if turn is None or task is None:
            return False
        turn.interrupted = True
        await self._runner.interrupt(turn.container_id, turn.id, until=task)
        return True

    async def messages(self, agent_id: str, limit: int) -> list[AgentMessage]:
        """The conversation with ``agent_id``, oldest first (kept after the agent is gone)."""
        stored = await self.store.messages(agent_id, limit)
        if not stored and self._registry.find(agent_id) is None:
            raise AgentNotFoundError(f"agent {agent_id[:80]!r} does not exist")
        return [message_model(m) for m in stored]

    async def close(self) -> None:
        """Interrupt the turns in flight (the service is stopping)."""
        tasks = list(self._turns.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def recover(self, intent: Intent) -> None:
        """A turn the service's crash cut short: end its CLI and answer it as interrupted."""
        turn_id = str(intent.data.get("turnId") or "")
        record = self._registry.find(intent.key)
        state = record.state if record is not None else None
        if intent.container_id is not None and state is not None and state.running:
            await self._runner.interrupt(intent.container_id, turn_id)
        output = self._journal.output(intent)
        await self._answer_interrupted(intent.key, turn_id, output, "the service restarted")
        if record is not None and record.busy:
            self._publisher.publish(lifecycle.turn_ended(record, ok=None, now=self._clock()))
        self._journal.end(intent)

    # -- one turn ---------------------------------------------------------------------------

    def _forget(self, agent_id: str, task: asyncio.Task[AgentMessage]) -> None:
        if self._turns.get(agent_id) is task:
            del self._turns[agent_id]
            self._running.pop(agent_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.warning("turn on agent %s failed: %s", agent_id, type(task.exception()).__name__)

    async def _run_turn(
        self, turn: Turn, intent: Intent, task_metadata: dict[str, Any]
    ) -> AgentMessage:
        started = time.monotonic()
        driver = self._drivers(self._agent_type(turn.agent_id))
        try:
            await self._record(
                StoredMessage(
                    id=message_id(),
                    agent_id=turn.agent_id,
                    direction="inbound",
                    type="task",
                    content=turn.message,
                    timestamp=self._clock(),
                    metadata={**task_metadata, "turnId": turn.id},
                )
            )
            result = await self._attempt(turn, driver, intent)
            changes = await self._runner.changes(turn)
        except asyncio.CancelledError:
            # The service is stopping: leave no CLI running in the agent, keep what it said.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self._runner.interrupt(turn.container_id, turn.id), KILL_EXEC_TIMEOUT_S
                )
            with contextlib.suppress(Exception):
                await self._answer_interrupted(
                    turn.agent_id, turn.id, self._journal.output(intent), "the service stopped"
                )
            self._journal.end(intent)
            self._end(turn.agent_id, None)
            raise
        except ParallaxError as exc:
            # The engine refused the exec (the container stopped, the engine went away).
            result = TurnResult(content=exc.message, ok=False, metadata={"code": exc.code})
            changes = None
        except BaseException:
            self._journal.end(intent)
            self._end(turn.agent_id, None)
            raise
        metadata: dict[str, Any] = {
            "turnId": turn.id,
            "driver": driver.name,
            "durationMs": round((time.monotonic() - started) * 1000),
            **result.metadata,
        }
        if result.login_required:
            metadata["code"] = LOGIN_REQUIRED
            metadata["loginUrl"] = result.login_url
        elif not result.ok:
            metadata.setdefault("code", TURN_FAILED)
        metadata["result"] = result_shape(
            result,
            status=turn_status(
                result, interrupted=metadata.get("code") in (TURN_TIMEOUT, TURN_INTERRUPTED)
            ),
            session_id=result.session_id or metadata.get("sessionId"),
            duration_ms=metadata["durationMs"],
            changes=changes,
        )
        answer = StoredMessage(
            id=message_id(),
            agent_id=turn.agent_id,
            direction="outbound",
            type="response" if result.ok else "error",
            content=result.content,
            timestamp=self._clock(),
            metadata=metadata,
        )
        model = await self._record(answer)
        self._journal.end(intent)
        self._end(turn.agent_id, result)
        return model

    async def _attempt(self, turn: Turn, driver: Driver, intent: Intent) -> TurnResult:
        sessions, execution = self._sessions, turn.execution_id
        session = await sessions.find(turn.agent_id, execution, driver.name)
        deadline = time.monotonic() + turn.timeout_s
        result = await self._once(turn, driver, session, deadline, intent)
        if result.resume_failed and session is not None:
            # The CLI no longer has the session (its home was reset): start a new one.
            await sessions.forget(turn.agent_id, execution, driver.name, self._clock())
            result = await self._once(turn, driver, None, deadline, intent)
        if result.ok and result.session_id:
            await sessions.keep(
                turn.agent_id, execution, driver.name, result.session_id, self._clock()
            )
        return result

    async def _once(
        self, turn: Turn, driver: Driver, session: str | None, deadline: float, intent: Intent
    ) -> TurnResult:
        plan = driver.plan(turn.message, session, self._approval(turn.agent_id))
        follow = self._on_output
        output = await self._runner.run(
            turn,
            plan,
            max(deadline - time.monotonic(), 0.001),
            intent,
            touch=lambda: self._touch(turn.agent_id),
            on_output=None if follow is None else lambda data: follow(turn.agent_id, turn.id, data),
        )
        if turn.interrupted:
            return interrupted_on_request(driver, output, TURN_INTERRUPTED)
        if output is None:
            return TurnResult(
                content=f"the agent did not answer within {turn.timeout_s:g} s; the turn was "
                "interrupted",
                ok=False,
                metadata={"code": TURN_TIMEOUT, "timeoutMs": round(turn.timeout_s * 1000)},
            )
        result = driver.parse(output)
        if result.session_id is None and plan.session_id is not None:
            # A driver that names the session itself (aider) runs the turn in it.
            result = dataclasses.replace(result, session_id=plan.session_id)
        return result

    async def _answer_interrupted(
        self, agent_id: str, turn_id: str, output: bytes, why: str
    ) -> AgentMessage:
        """The answer of a turn cut short: what the CLI had said, as its driver reads it."""
        driver = self._drivers(self._agent_type(agent_id))
        said = said_before_cut(driver, output)
        content = f"the turn was interrupted ({why})" + (
            f"; the agent had said: {said}" if said else ""
        )
        shape = result_shape(
            TurnResult(content=content, ok=False),
            status="interrupted",
            session_id=None,
            duration_ms=0,
            changes=None,
        )
        return await self._record(
            StoredMessage(
                id=message_id(),
                agent_id=agent_id,
                direction="outbound",
                type="error",
                content=content,
                timestamp=self._clock(),
                metadata={
                    "turnId": turn_id,
                    "driver": driver.name,
                    "code": TURN_INTERRUPTED,
                    "status": "interrupted",
                    "output": output.decode("utf-8", "replace"),
                    "result": shape,
                },
            )
        )

    def _touch(self, agent_id: str) -> None:
        if (record := self._registry.find(agent_id)) is not None:
            lifecycle.touched(record)

    def _end(self, agent_id: str, result: TurnResult | None) -> None:
        self._running.pop(agent_id, None)  # answered: nothing left to interrupt
        if (record := self._registry.find(agent_id)) is None:
            return
        events = lifecycle.turn_ended(
            record,
            ok=None if result is None else result.ok,
            login_required=result is not None and result.login_required,
            login_url=result.login_url if result is not None else None,
            now=self._clock(),
        )
        self._publisher.publish(events)

    # -- helpers ----------------------------------------------------------------------------

    def _agent_type(self, agent_id: str) -> str:
        return record.labels.type if (record := self._registry.find(agent_id)) else "custom"

    async def _record(self, message: StoredMessage) -> AgentMessage:
        try:
            await self.store.add_message(message)
        except Exception as exc:  # the answer still goes out; only its history is lost
            log.error("could not store message %s: %s", message.id, type(exc).__name__)
        model = message_model(message)
        self._publisher.publish(
            [
                AgentEvent(
                    "message",
                    {"message": model.model_dump(mode="json", by_alias=True)},
                    message.agent_id,
                )
            ]
        )
        return model
