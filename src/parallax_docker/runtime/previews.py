"""Previews of the apps agents run: where a port is reached, and the links that open it.

The API proxies ``/agents/{id}/ports/{port}/...`` (with the API token) and ``/previews/<ticket>/
...`` (a browser link) to the agent's port (api/previews.py). Here: the agent's address from the
platform (the ``Ports`` capability), the ports opened (shown in the handle), and the tickets.

A ticket names one agent's container and one port and expires; it is signed with a key made at
start-up (HMAC-SHA256), so it grants that preview and nothing else, never the API, and no
ticket outlives the service process. docs/files.md describes the threat it answers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time

from parallax_docker.backends.capabilities import Ports
from parallax_docker.errors import (
    AgentNotFoundError,
    AgentStateError,
    PreviewTicketError,
    PreviewUnavailableError,
    ValidationError,
)
from parallax_docker.file_models import PreviewResponse
from parallax_docker.runtime import lifecycle
from parallax_docker.runtime.engine_link import EngineLink
from parallax_docker.runtime.registry import Registry

TICKET_PREFIX = "/previews/"
_SIGNATURE_BYTES = 20


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _container_tag(container_id: str) -> str:
    """A short stand-in for the container's id (the link need not show it)."""
    return _encode(hashlib.sha256(container_id.encode()).digest()[:12])


class Previews:
    def __init__(
        self,
        *,
        ports: Ports | None,
        registry: Registry,
        engine: EngineLink,
        ttl_s: float,
        key: bytes | None = None,
    ) -> None:
        self._ports = ports
        self._registry = registry
        self._engine = engine
        self._ttl_s = ttl_s
        self._key = key or secrets.token_bytes(32)
        # container id -> its address: every request of a page would otherwise ask the engine.
        self._addresses: dict[str, str] = {}

    async def target(self, agent_id: str, port: int) -> tuple[str, int]:
        """Where to connect for ``port`` of running agent ``agent_id``."""
        if not 1 <= port <= 65535:
            raise ValidationError("a port is a number from 1 to 65535")
        self._engine.require()
        record = self._registry.get(agent_id)
        container_id = record.container_id
        if container_id is None or record.state is None or not record.state.running:
            raise AgentStateError(f"agent {agent_id!r} is not running")
        if self._ports is None:
            raise PreviewUnavailableError("this platform offers no way to reach an agent's ports")
        host = self._addresses.get(container_id)
        if host is None:
            found = await self._ports.address(container_id, port)
            if found is None:
                raise PreviewUnavailableError(
                    f"agent {agent_id!r} has no network address the service can reach"
                )
            host = found[0]
            if len(self._addresses) > 4096:
                self._addresses.clear()
            self._addresses[container_id] = host
        return host, port

    def forget(self, agent_id: str) -> None:
        """The agent's address failed: ask the platform again next time."""
        record = self._registry.find(agent_id)
        if record is not None and record.container_id is not None:
            self._addresses.pop(record.container_id, None)

    def opened(self, agent_id: str, port: int) -> None:
        record = self._registry.find(agent_id)
        if record is not None:
            lifecycle.port_opened(record, port)

    # -- tickets -----------------------------------------------------------------------------

    def issue(self, agent_id: str, port: int, now: float | None = None) -> PreviewResponse:
        """A link to ``port`` of ``agent_id``, for a browser (which cannot send the token)."""
        if not 1 <= port <= 65535:
            raise ValidationError("a port is a number from 1 to 65535")
        self._engine.require()
        record = self._registry.get(agent_id)
        if record.container_id is None:
            raise AgentStateError(f"agent {agent_id!r} has no container")
        expires = int((time.time() if now is None else now) + self._ttl_s)
        payload = f"{agent_id}\n{port}\n{expires}\n{_container_tag(record.container_id)}".encode()
        ticket = f"{_encode(payload)}.{_encode(self._sign(payload))}"
        return PreviewResponse(port=port, path=f"{TICKET_PREFIX}{ticket}/", expires_at=expires)

    def verify(self, ticket: str, now: float | None = None) -> tuple[str, int]:
        """(agent id, port) a ticket opens; PreviewTicketError unless valid, current and for
        the agent's present container."""
        invalid = PreviewTicketError("the preview link is not valid (or has expired)")
        encoded, _, signature = ticket.partition(".")
        try:
            payload = _decode(encoded)
            given = _decode(signature)
        except (binascii.Error, ValueError):
            raise invalid from None
        if not hmac.compare_digest(given, self._sign(payload)):
            raise invalid
        try:
            agent_id, port_text, expires_text, container_id = payload.decode().split("\n")
            port, expires = int(port_text), int(expires_text)
        except ValueError:
            raise invalid from None
        if expires < (time.time() if now is None else now):
            raise invalid
        record = self._registry.find(agent_id)
        if record is None or _container_tag(record.container_id or "") != container_id:
            # Gone, or another agent under the same id since: the link was for the old one.
            raise AgentNotFoundError(f"the agent of this preview link is gone ({agent_id!r})")
        return agent_id, port

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
