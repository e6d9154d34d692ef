"""Which CLI session a turn resumes: the agent's own, or else its execution's latest.

The CLIs keep their sessions in the home directory, which lasts as long as the agent (a
runtime-owned volume, runtime/spec.py) or, for agents spawned with an ``executionId``, as long
as the execution (its shared home volume). The store keeps the session id per agent; for an
agent of an execution it is also kept under the execution (``execution:<id>:<driver>``, a key
no agent id can take: agent ids have no colon), so that an agent spawned again into the same
execution resumes the conversation its predecessor left in the shared home.
"""

from __future__ import annotations

from parallax_docker.runtime.store import Store


def execution_key(execution_id: str, driver: str) -> str:
    return f"execution:{execution_id}:{driver}"


class Sessions:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def find(self, agent_id: str, execution_id: str | None, driver: str) -> str | None:
        """The session to resume: the agent's, else its execution's (None: a new one)."""
        session = await self._store.session(agent_id, driver)
        if session is None and execution_id:
            session = await self._store.session(execution_key(execution_id, driver), driver)
        return session

    async def keep(
        self, agent_id: str, execution_id: str | None, driver: str, session_id: str, now: float
    ) -> None:
        await self._store.set_session(agent_id, driver, session_id, now)
        if execution_id:
            await self._store.set_session(
                execution_key(execution_id, driver), driver, session_id, now
            )

    async def forget(
        self, agent_id: str, execution_id: str | None, driver: str, now: float
    ) -> None:
        """The CLI no longer knows the session (its home was reset): start a new one."""
        await self._store.set_session(agent_id, driver, None, now)
        if execution_id:
            await self._store.set_session(execution_key(execution_id, driver), driver, None, now)
