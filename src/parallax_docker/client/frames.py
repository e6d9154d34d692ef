"""WebSocket event frames as the client reads them (the server has no model for a frame).

Every HTTP answer is read with ``parallax_docker.models``, the server's own schemas. A frame is
lenient (unknown fields are kept) so that a service that adds a field does not break a client.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from parallax_docker.models import AgentHandle


class EventFrame(BaseModel):
    """One WebSocket frame: ``{event, data, timestamp}``."""

    model_config = ConfigDict(extra="allow")

    event: str
    data: dict[str, Any] = Field(default_factory=dict)
    timestamp: float | str | None = None

    @property
    def agent(self) -> AgentHandle | None:
        """The agent handle of an ``agent_*`` event, when the frame carries one."""
        agent = self.data.get("agent")
        return AgentHandle.model_validate(agent) if isinstance(agent, dict) else None
