"""Answers the client reads that have no server model yet: event frames and send results.

The agent handle, list, logs, metrics and health come from ``parallax_docker.models``, the
server's own schemas. These two are lenient (unknown fields are kept) so that a service
that grows a field does not break an older client.
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


class SendResult(BaseModel):
    """``POST /agents/{id}/send``: ``{sent, response?}``; the response is the agent's message."""

    model_config = ConfigDict(extra="allow")

    sent: bool
    response: dict[str, Any] | None = None

    @property
    def content(self) -> str | None:
        """The text of the agent's answer, when one came back."""
        if self.response is None:
            return None
        content = self.response.get("content")
        return content if isinstance(content, str) else None
