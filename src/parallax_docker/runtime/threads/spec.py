"""What a thread was spawned with, and an input waiting for its turn: fixed facts (frozen)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from parallax_docker.runtime.clock import iso_time
from parallax_docker.thread_models import ApprovalPreset


@dataclass(frozen=True)
class ThreadSpec:
    """What a thread was spawned with (never secret: env values are the agent's, not here)."""

    id: str
    execution_id: str
    name: str
    agent_type: str
    objective: str
    created_at: float
    approval_preset: ApprovalPreset = ApprovalPreset.AUTONOMOUS
    role: str | None = None
    workspace: dict[str, str] | None = None
    metadata: dict[str, Any] | None = None
    idle_timeout_s: float | None = None
    max_idle_checks: int | None = None
    summarize_after_turns: int | None = None
    spec_hash: str = ""

    @property
    def agent_id(self) -> str:
        # The thread id is its agent's id (docs/threads.md).
        return self.id

    def handle_fields(self) -> dict[str, Any]:
        """The part of the thread's handle that never changes."""
        return {
            "id": self.id,
            "executionId": self.execution_id,
            "agentId": self.agent_id,
            "agentType": self.agent_type,
            "name": self.name,
            "role": self.role,
            "workspace": self.workspace,
            "objective": self.objective,
            "approvalPreset": self.approval_preset,
            "createdAt": iso_time(self.created_at),
            "metadata": self.metadata,
        }


@dataclass(frozen=True)
class QueuedInput:
    message: str
    metadata: dict[str, Any] = field(default_factory=dict)
