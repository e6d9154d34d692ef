"""Interactive terminals in agents: a TTY exec, hung up when its client goes away.

A TTY exec outlives the connection that started it, so the terminal's shell records its pid
(runtime/drivers/wrapper.py) and ``close`` hangs its process group up from a second exec.
Terminals are a capability of the platform; without it, opening one is refused.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from parallax_docker.backends.base import Backend, ExecSpec, TerminalSession
from parallax_docker.backends.capabilities import Terminals
from parallax_docker.errors import AgentStateError, ParallaxError, ValidationError
from parallax_docker.runtime import lifecycle
from parallax_docker.runtime.agent_record import AgentRecord
from parallax_docker.runtime.drivers.wrapper import hangup_argv, terminal_argv
from parallax_docker.runtime.engine_link import EngineLink
from parallax_docker.runtime.registry import Registry

log = logging.getLogger(__name__)

TERMINAL_ENV = {"TERM": "xterm-256color"}
HANGUP_TIMEOUT_S = 10.0


class AgentTerminal:
    """One terminal session in one agent; typing counts as the agent's activity."""

    def __init__(
        self,
        backend: Backend,
        record: AgentRecord,
        container_id: str,
        terminal_id: str,
        session: TerminalSession,
    ) -> None:
        self._backend = backend
        self._record = record
        self._container_id = container_id
        self.id = terminal_id
        self._session = session

    async def read(self) -> bytes:
        return await self._session.read()

    async def write(self, data: bytes) -> None:
        lifecycle.touched(self._record)
        await self._session.write(data)

    async def resize(self, cols: int, rows: int) -> None:
        await self._session.resize(cols, rows)

    async def exit_code(self) -> int | None:
        return await self._session.exit_code()

    async def close(self) -> None:
        """Hang up: close the connection, then end the shell and all it started."""
        await self._session.close()
        try:
            await asyncio.shield(
                self._backend.exec(
                    self._container_id,
                    ExecSpec(argv=hangup_argv(self.id)),
                    timeout_s=HANGUP_TIMEOUT_S,
                )
            )
        except ParallaxError as exc:  # the agent may be gone already
            log.debug("could not hang up terminal %s: %s", self.id, exc.code)


class TerminalService:
    def __init__(
        self,
        *,
        backend: Backend,
        terminals: Terminals | None,
        registry: Registry,
        engine: EngineLink,
    ) -> None:
        self._backend = backend
        self._terminals = terminals
        self._registry = registry
        self._engine = engine

    async def open(
        self, agent_id: str, *, cols: int, rows: int, cli: bool = False
    ) -> AgentTerminal:
        """A terminal in running agent ``agent_id``: a login shell, or (``cli``) its CLI."""
        self._engine.require()
        record = self._registry.get(agent_id)
        if self._terminals is None:
            raise ValidationError(
                "this platform offers no terminals",
                resolution="Use POST /agents/{id}/send to talk to the agent.",
            )
        container_id = record.container_id
        if container_id is None or record.state is None or not record.state.running:
            raise AgentStateError(f"agent {agent_id!r} is not running")
        terminal_id = f"term-{secrets.token_hex(8)}"
        session = await self._terminals.open_terminal(
            container_id,
            ExecSpec(argv=terminal_argv(terminal_id, cli=cli), env=TERMINAL_ENV),
            cols,
            rows,
        )
        lifecycle.touched(record)
        return AgentTerminal(self._backend, record, container_id, terminal_id, session)
