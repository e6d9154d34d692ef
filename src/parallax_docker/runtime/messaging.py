"""MessagingService: a message in, one turn of the agent's CLI, the answer out.

One turn per message, one turn at a time per agent: while a turn runs the agent is ``busy`` and
another ``send`` is refused with 409 ``AGENT_BUSY`` (docs/messaging.md). A turn is a
``docker exec`` of the agent's driver argv through the turn wrapper (drivers/wrapper.py), the
message on stdin. A turn past its timeout is interrupted (its process group killed from a second
exec) and answered with a ``TURN_TIMEOUT`` error message; the agent stays usable. A CLI that
says it needs a login puts the agent in ``authenticating`` and publishes ``login_required``.

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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from parallax_docker.backends.base import ExecExit, ExecSpec
from parallax_docker.config import Settings
from parallax_docker.errors import (
    AgentBusyError,
    AgentNotFoundError,
    AgentStateError,
    ParallaxError,
)
from parallax_docker.models import AgentMessage, AgentStatus, SendResponse
from parallax_docker.runtime.drivers import Driver, driver_for
from parallax_docker.runtime.drivers.base import TurnOutput, TurnPlan, TurnResult
from parallax_docker.runtime.drivers.result import result_shape, turn_status
from parallax_docker.runtime.drivers.wrapper import kill_argv, turn_argv
from parallax_docker.runtime.registry import AgentRecord
from parallax_docker.runtime.service import AgentService
from parallax_docker.runtime.sessions import Sessions
from parallax_docker.runtime.store import Store, StoredMessage
from parallax_docker.runtime.workspace_changes import collect_changes

log = logging.getLogger(__name__)

# Error codes a turn's answer can carry (metadata.code of a message of type "error").
TURN_TIMEOUT = "TURN_TIMEOUT"
TURN_FAILED = "TURN_FAILED"
LOGIN_REQUIRED = "LOGIN_REQUIRED"

STDOUT_MAX = 32 * 1024 * 1024
STDERR_MAX = 1024 * 1024
# After the kill, how long the interrupted exec may take to report its end.
KILL_WAIT_S = 5.0
KILL_EXEC_TIMEOUT_S = 10.0
# Activity during a long turn keeps the agent from being stopped as idle.
_TOUCH_EVERY_S = 1.0
_ACCEPTING = (AgentStatus.READY, AgentStatus.AUTHENTICATING)


@dataclass
class _Turn:
    id: str
    agent_id: str
    container_id: str
    message: str
    timeout_s: float
    execution_id: str | None = None


class MessagingService:
    def __init__(
        self,
        settings: Settings,
        service: AgentService,
        store: Store,
        drivers: Callable[[str], Driver] = driver_for,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.service = service
        self.store = store
        self._drivers = drivers
        self._clock = clock
        self._turns: dict[str, asyncio.Task[AgentMessage]] = {}
        self._sessions = Sessions(store)

    @property
    def busy_agents(self) -> Mapping[str, asyncio.Task[AgentMessage]]:
        return self._turns

    # -- the API's operations ---------------------------------------------------------------

    async def send(
        self, agent_id: str, message: str, *, expect_response: bool, timeout_ms: int | None
    ) -> SendResponse:
        """Start a turn with ``message``; with ``expect_response``, wait for and return the answer.

        Refused (nothing sent) with 404, 409 ``AGENT_BUSY`` while a turn runs, 409
        ``AGENT_STATE`` unless the agent is ready (or authenticating), 503 without the engine.
        Once accepted, every outcome is an answer message: a timeout, a failure or a login
        prompt is an ``error`` message whose ``metadata.code`` says which.
        """
        self.service.require_engine()
        record = self.service.registry.get(agent_id)
        if record.busy or agent_id in self._turns:
            raise AgentBusyError(f"agent {agent_id!r} is working on another message")
        if record.status not in _ACCEPTING or record.container_id is None:
            raise AgentStateError(
                f"agent {agent_id!r} is {record.status.value}; it takes messages once ready"
            )
        timeout_s = self.settings.turn_timeout_s if timeout_ms is None else timeout_ms / 1000
        turn = _Turn(
            id=f"turn-{secrets.token_hex(8)}",
            agent_id=agent_id,
            container_id=record.container_id,
            message=message,
            timeout_s=timeout_s,
            execution_id=record.labels.execution_id,
        )
        # From here to the task's creation nothing awaits: no second send can slip in.
        self._begin(record)
        task = asyncio.create_task(self._run_turn(turn), name=f"parallax-{turn.id}")
        self._turns[agent_id] = task
        task.add_done_callback(lambda done: self._forget(agent_id, done))
        if not expect_response:
            return SendResponse(sent=True)
        # Shielded: a client that hangs up does not cut the turn short.
        answer = await asyncio.shield(task)
        return SendResponse(sent=True, response=answer)

    async def messages(self, agent_id: str, limit: int) -> list[AgentMessage]:
        """The conversation with ``agent_id``, oldest first (kept after the agent is gone)."""
        stored = await self.store.messages(agent_id, limit)
        if not stored and self.service.registry.find(agent_id) is None:
            raise AgentNotFoundError(f"agent {agent_id[:80]!r} does not exist")
        return [_message_model(m) for m in stored]

    async def close(self) -> None:
        """Interrupt the turns in flight (the service is stopping)."""
        tasks = list(self._turns.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- one turn ---------------------------------------------------------------------------

    def _begin(self, record: AgentRecord) -> None:
        record.busy = True
        if record.status in _ACCEPTING:
            record.status = AgentStatus.BUSY
        record.last_activity = self._clock()
        self._publish("agent_busy", record)

    def _forget(self, agent_id: str, task: asyncio.Task[AgentMessage]) -> None:
        if self._turns.get(agent_id) is task:
            del self._turns[agent_id]
        if not task.cancelled() and task.exception() is not None:
            log.warning("turn on agent %s failed: %s", agent_id, type(task.exception()).__name__)

    async def _run_turn(self, turn: _Turn) -> AgentMessage:
        started = time.monotonic()
        driver = self._drivers(self._agent_type(turn.agent_id))
        try:
            await self._record(
                StoredMessage(
                    id=_message_id(),
                    agent_id=turn.agent_id,
                    direction="inbound",
                    type="task",
                    content=turn.message,
                    timestamp=self._clock(),
                    metadata={"turnId": turn.id},
                )
            )
            result = await self._attempt(turn, driver)
            changes = await collect_changes(self.service.backend, turn.container_id, turn.id)
        except asyncio.CancelledError:
            # The service is stopping: leave no CLI running in the agent.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._interrupt(turn), KILL_EXEC_TIMEOUT_S)
            self._end(turn.agent_id, None)
            raise
        except ParallaxError as exc:
            # The engine refused the exec (the container stopped, the engine went away).
            result = TurnResult(content=exc.message, ok=False, metadata={"code": exc.code})
            changes = None
        except BaseException:
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
            status=turn_status(result, interrupted=metadata.get("code") == TURN_TIMEOUT),
            session_id=result.session_id or metadata.get("sessionId"),
            duration_ms=metadata["durationMs"],
            changes=changes,
        )
        answer = StoredMessage(
            id=_message_id(),
            agent_id=turn.agent_id,
            direction="outbound",
            type="response" if result.ok else "error",
            content=result.content,
            timestamp=self._clock(),
            metadata=metadata,
        )
        model = await self._record(answer)
        self._end(turn.agent_id, result)
        return model

    async def _attempt(self, turn: _Turn, driver: Driver) -> TurnResult:
        sessions, execution = self._sessions, turn.execution_id
        session = await sessions.find(turn.agent_id, execution, driver.name)
        deadline = time.monotonic() + turn.timeout_s
        result = await self._once(turn, driver, driver.plan(turn.message, session), deadline)
        if result.resume_failed and session is not None:
            # The CLI no longer has the session (its home was reset): start a new one.
            await sessions.forget(turn.agent_id, execution, driver.name, self._clock())
            result = await self._once(turn, driver, driver.plan(turn.message, None), deadline)
        if result.ok and result.session_id:
            await sessions.keep(
                turn.agent_id, execution, driver.name, result.session_id, self._clock()
            )
        return result

    async def _once(
        self, turn: _Turn, driver: Driver, plan: TurnPlan, deadline: float
    ) -> TurnResult:
        output = await self._exec(turn, plan, max(deadline - time.monotonic(), 0.001))
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

    async def _exec(self, turn: _Turn, plan: TurnPlan, timeout_s: float) -> TurnOutput | None:
        """Run the turn; its output, or None when it ran past ``timeout_s`` (then it is killed)."""
        spec = ExecSpec(
            argv=turn_argv(
                turn.id,
                plan.argv,
                check_credentials=plan.check_credentials,
                message_file_flag=plan.message_file_flag,
            ),
            stdin=plan.stdin,
        )
        stdout, stderr = bytearray(), bytearray()
        state = {"exit": -1, "truncated": False, "touched": time.monotonic()}

        async def consume() -> None:
            async for item in self.service.backend.stream_exec(turn.container_id, spec):
                if isinstance(item, ExecExit):
                    state["exit"] = item.exit_code
                    continue
                if item.stream == "stdout":
                    room = STDOUT_MAX - len(stdout)
                    stdout.extend(item.data[:room])
                    if len(item.data) > room:
                        state["truncated"] = True
                else:
                    stderr.extend(item.data)
                    if len(stderr) > STDERR_MAX:
                        del stderr[: len(stderr) - STDERR_MAX]
                now = time.monotonic()
                if now - state["touched"] >= _TOUCH_EVERY_S:
                    state["touched"] = now
                    self.service.touch(turn.agent_id)

        reader = asyncio.create_task(consume(), name=f"parallax-{turn.id}-output")
        try:
            done, _ = await asyncio.wait({reader}, timeout=timeout_s)
            if reader in done:
                reader.result()
                return TurnOutput(
                    stdout=bytes(stdout),
                    stderr=bytes(stderr),
                    exit_code=int(state["exit"]),
                    truncated=bool(state["truncated"]),
                )
            log.info("turn %s on agent %s timed out after %gs", turn.id, turn.agent_id, timeout_s)
            await self._interrupt(turn)
            with contextlib.suppress(Exception):
                await asyncio.wait({reader}, timeout=KILL_WAIT_S)
            return None
        finally:
            if not reader.done():
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, ParallaxError):
                    await reader

    async def _interrupt(self, turn: _Turn) -> None:
        try:
            await self.service.backend.exec(
                turn.container_id, kill_argv(turn.id), timeout_s=KILL_EXEC_TIMEOUT_S
            )
        except ParallaxError as exc:
            log.warning("could not interrupt turn %s: %s", turn.id, exc.code)

    def _end(self, agent_id: str, result: TurnResult | None) -> None:
        record = self.service.registry.find(agent_id)
        if record is None:
            return
        record.busy = False
        record.last_activity = self._clock()
        if result is not None and result.login_required:
            record.login_required = True
        elif result is not None and result.ok:
            record.login_required = False
        if record.status in (AgentStatus.BUSY, *_ACCEPTING):
            record.status = record.ready_status()
        if result is not None and result.login_required:
            self._publish("login_required", record, loginUrl=result.login_url)
        elif record.status == AgentStatus.READY:
            self._publish("agent_ready", record)

    # -- helpers ----------------------------------------------------------------------------

    def _agent_type(self, agent_id: str) -> str:
        record = self.service.registry.find(agent_id)
        return record.labels.type if record is not None else "custom"

    async def _record(self, message: StoredMessage) -> AgentMessage:
        try:
            await self.store.add_message(message)
        except Exception as exc:  # the answer still goes out; only its history is lost
            log.error("could not store message %s: %s", message.id, type(exc).__name__)
        model = _message_model(message)
        self.service.bus.publish(
            "message",
            {"message": model.model_dump(mode="json", by_alias=True)},
            agent_id=message.agent_id,
        )
        return model

    def _publish(self, event: str, record: AgentRecord, **extra: Any) -> None:
        data: dict[str, Any] = {"agent": record.handle().model_dump(mode="json", by_alias=True)}
        data.update(extra)
        self.service.bus.publish(event, data, agent_id=record.id)


def _message_id() -> str:
    return f"msg-{secrets.token_hex(8)}"


def iso_time(timestamp: float) -> str:
    return (
        datetime.fromtimestamp(timestamp, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _message_model(message: StoredMessage) -> AgentMessage:
    return AgentMessage(
        id=message.id,
        agent_id=message.agent_id,
        direction="inbound" if message.direction == "inbound" else "outbound",
        type=message.type,
        content=message.content,
        metadata=message.metadata,
        timestamp=iso_time(message.timestamp),
    )
