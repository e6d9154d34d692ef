"""The runtime's in-memory view of its agents, kept in step with the engine by the reconciler.

Reads (list, get) are answered from here without an engine call. Ids and names are reserved
here, before any await, so that two concurrent spawns of one name cannot both pass. The records
themselves change only through runtime/lifecycle.py.
"""

from __future__ import annotations

from collections.abc import Iterator

from parallax_docker.errors import AgentNotFoundError, ConflictError
from parallax_docker.runtime import lifecycle
from parallax_docker.runtime.agent_record import LIVE, AgentRecord
from parallax_docker.runtime.labels import AgentLabels


class Registry:
    def __init__(self) -> None:
        self._by_id: dict[str, AgentRecord] = {}

    def __iter__(self) -> Iterator[AgentRecord]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, agent_id: str) -> AgentRecord:
        record = self._by_id.get(agent_id)
        if record is None:
            raise AgentNotFoundError(f"agent {agent_id[:80]!r} does not exist")
        return record

    def find(self, agent_id: str) -> AgentRecord | None:
        return self._by_id.get(agent_id)

    def by_container(self, container_id: str) -> AgentRecord | None:
        for record in self._by_id.values():
            if record.container_id == container_id:
                return record
        return None

    def reserve(self, labels: AgentLabels) -> AgentRecord:
        """Claim the id and name for a spawn; ConflictError if either is taken."""
        if labels.id in self._by_id:
            raise ConflictError(f"an agent with id {labels.id!r} already exists")
        # Ids and names are both network aliases: none may stand for two agents.
        for record in self._by_id.values():
            if labels.name in (record.labels.name, record.id):
                raise ConflictError(
                    f"an agent named {labels.name!r} already exists (id {record.id})"
                )
            if labels.id == record.labels.name:
                raise ConflictError(f"another agent is named {labels.id!r}; choose another id")
        record = lifecycle.spawn_begun(labels)
        self._by_id[labels.id] = record
        return record

    def put(self, record: AgentRecord) -> None:
        self._by_id[record.id] = record

    def drop(self, agent_id: str) -> AgentRecord | None:
        return self._by_id.pop(agent_id, None)

    def active_count(self) -> int:
        return sum(1 for r in self._by_id.values() if r.status in LIVE)
