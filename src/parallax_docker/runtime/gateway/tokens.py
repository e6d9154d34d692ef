"""Per-agent gateway tokens: an HMAC of the agent's id under a key only the service holds.

A token names its agent and cannot be forged or moved to another agent. It needs no table, so it
survives a restart of the service; it is *live* only while its agent is (the gateway asks the
registry at each request), so an agent that stops has its token revoked with it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

PREFIX = "pgw1"
_KEY_BYTES = 32


class TokenBook:
    def __init__(self, key_path: Path) -> None:
        self._key_path = key_path
        self._key = b""

    def load(self) -> None:
        """Read the signing key, making it (0600, in a 0700 folder) on the first start."""
        self._key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self._key = self._key_path.read_bytes()
        except FileNotFoundError:
            fd = os.open(self._key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(_KEY_BYTES))
            self._key = self._key_path.read_bytes()

    def _mac(self, agent_id: str) -> str:
        return hmac.new(self._key, agent_id.encode(), hashlib.sha256).hexdigest()[:40]

    def issue(self, agent_id: str) -> str:
        if not self._key:
            self.load()
        return f"{PREFIX}.{agent_id}.{self._mac(agent_id)}"

    def agent_of(self, token: str) -> str | None:
        """The agent a well-signed token names; None for anything else."""
        if not self._key:
            return None
        head, _, mac = token.rpartition(".")
        prefix, _, agent_id = head.partition(".")
        if prefix != PREFIX or not agent_id:
            return None
        if not hmac.compare_digest(mac, self._mac(agent_id)):
            return None
        return agent_id
