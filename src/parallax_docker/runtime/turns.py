"""Running one turn in an agent: a ``docker exec`` of the driver's argv through the turn wrapper.

The message goes in on stdin; stdout is collected (bounded) and, as it arrives, kept in the
journal so that a turn a crash cut short still has what the CLI said. A turn past its timeout is
interrupted: its process group is killed from a second exec (runtime/drivers/wrapper.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from parallax_docker.backends.base import Backend, ExecExit, ExecSpec
from parallax_docker.errors import ParallaxError
from parallax_docker.runtime.drivers.base import TurnOutput, TurnPlan
from parallax_docker.runtime.drivers.wrapper import kill_argv, turn_argv
from parallax_docker.runtime.journal import Intent, Journal
from parallax_docker.runtime.workspace_changes import WorkspaceChanges, collect_changes

log = logging.getLogger(__name__)

STDOUT_MAX = 32 * 1024 * 1024
STDERR_MAX = 1024 * 1024
# After the kill, how long the interrupted exec may take to report its end.
KILL_WAIT_S = 5.0
KILL_EXEC_TIMEOUT_S = 10.0
# How long a requested interrupt keeps trying, and how often.
INTERRUPT_RETRY_S = 10.0
_INTERRUPT_POLL_S = 0.3
# Activity during a long turn keeps the agent from being stopped as idle.
_TOUCH_EVERY_S = 1.0


@dataclass
class Turn:
    id: str
    agent_id: str
    container_id: str
    message: str
    timeout_s: float
    execution_id: str | None = None
    # Set when someone asked for the turn to be interrupted (a thread's Ctrl-C).
    interrupted: bool = False


class TurnRunner:
    def __init__(self, backend: Backend, journal: Journal) -> None:
        self._backend = backend
        self._journal = journal

    async def run(
        self,
        turn: Turn,
        plan: TurnPlan,
        timeout_s: float,
        intent: Intent,
        touch: Callable[[], None],
        on_output: Callable[[bytes], None] | None = None,
    ) -> TurnOutput | None:
        """Run the turn; its output, or None when it ran past ``timeout_s`` (it is killed).

        ``on_output`` sees each piece of stdout as it arrives (a thread follows the CLI's
        progress with it).
        """
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
        state = {"exit": -1, "truncated": False, "said": False, "touched": time.monotonic()}

        async def consume() -> None:
            async for item in self._backend.stream_exec(turn.container_id, spec):
                if isinstance(item, ExecExit):
                    state["exit"] = item.exit_code
                    continue
                if item.stream == "stdout":
                    room = STDOUT_MAX - len(stdout)
                    stdout.extend(item.data[:room])
                    if len(item.data) > room:
                        state["truncated"] = True
                    self._journal.append_output(intent, item.data)
                    if on_output is not None:
                        _follow(on_output, item.data)
                    if not state["said"]:
                        state["said"] = True
                        self._journal.note(intent, step="running")
                else:
                    stderr.extend(item.data)
                    if len(stderr) > STDERR_MAX:
                        del stderr[: len(stderr) - STDERR_MAX]
                now = time.monotonic()
                if now - state["touched"] >= _TOUCH_EVERY_S:
                    state["touched"] = now
                    touch()

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
            await self.interrupt(turn.container_id, turn.id)
            with contextlib.suppress(Exception):
                await asyncio.wait({reader}, timeout=KILL_WAIT_S)
            return None
        finally:
            if not reader.done():
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, ParallaxError):
                    await reader

    async def changes(self, turn: Turn) -> WorkspaceChanges | None:
        """The files under /workspace the turn changed (None: the image cannot tell)."""
        return await collect_changes(self._backend, turn.container_id, turn.id)

    async def interrupt(
        self, container_id: str, turn_id: str, until: asyncio.Future[Any] | None = None
    ) -> None:
        """End the turn's CLI and everything it started (nothing when it has ended).

        With ``until`` (the turn's task), try again until the turn has ended: a turn asked to
        stop just after it began may not have written its pid file yet.
        """
        deadline = time.monotonic() + INTERRUPT_RETRY_S
        while True:
            try:
                await self._backend.exec(
                    container_id, ExecSpec(argv=kill_argv(turn_id)), timeout_s=KILL_EXEC_TIMEOUT_S
                )
            except ParallaxError as exc:
                log.warning("could not interrupt turn %s: %s", turn_id, exc.code)
            if until is None or time.monotonic() > deadline:
                return
            done, _ = await asyncio.wait({until}, timeout=_INTERRUPT_POLL_S)
            if done:
                return


def _follow(on_output: Callable[[bytes], None], data: bytes) -> None:
    """Hand output to a follower; its failure never fails the turn."""
    try:
        on_output(data)
    except Exception as exc:
        log.warning("a turn output follower failed: %s", type(exc).__name__)
