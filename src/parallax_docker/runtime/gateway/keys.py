"""The provider keys of each agent, kept by the gateway only: one 0600 JSON file per agent in a
0700 folder of the service's state (never under the secrets folder the agents' env files use,
never mounted into any container)."""

from __future__ import annotations

import builtins
import contextlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from parallax_docker.runtime.private_files import write_private


class KeyStore:
    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._cache: dict[str, dict[str, str]] = {}

    def _path(self, agent_id: str) -> Path:
        return self._folder / f"{agent_id}.json"

    def put(self, agent_id: str, keys: Mapping[str, str]) -> None:
        self._folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(self._path(agent_id), json.dumps(dict(keys)).encode())
        self._cache[agent_id] = dict(keys)

    def get(self, agent_id: str, provider: str) -> str | None:
        keys = self._cache.get(agent_id)
        if keys is None:
            try:
                keys = json.loads(self._path(agent_id).read_text())
            except (OSError, ValueError):
                return None
            self._cache[agent_id] = keys
        return keys.get(provider)

    def remove(self, agent_id: str) -> None:
        self._cache.pop(agent_id, None)
        with contextlib.suppress(FileNotFoundError):
            self._path(agent_id).unlink()

    def prune(self, keep: Iterable[str]) -> builtins.list[str]:
        kept = set(keep)
        gone = []
        for path in self._folder.glob("*.json") if self._folder.is_dir() else ():
            if path.stem not in kept:
                self.remove(path.stem)
                gone.append(path.stem)
        return gone
