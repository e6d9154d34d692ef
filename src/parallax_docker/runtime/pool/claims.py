"""Claim records: which agent each claimed pooled container is.

Labels are fixed when a container is created, and pooled containers carry only pool labels. One
small JSON file per claimed container (written atomically) gives it its agent identity back
after a restart of the service; the records are read before the registry is filled. A claim
still pending (the service died mid-claim) is not an agent: its container is removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

from parallax_docker.runtime.labels import AgentLabels

log = logging.getLogger(__name__)


class ClaimStore:
    """Which agent each claimed container is: one small JSON file per container, written
    atomically. Complete claims give a claimed container its identity after a restart."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._complete: dict[str, AgentLabels] = {}
        self._pending: set[str] = set()

    def load(self) -> None:
        try:
            entries = sorted(self.folder.glob("*.json"))
        except OSError:
            return
        for path in entries:
            try:
                data = json.loads(path.read_text())
                labels = AgentLabels.decode(data["labels"])
                container_id = str(data["container"])
            except (OSError, ValueError, KeyError, TypeError):
                log.warning("ignoring an unreadable pool claim record %s", path.name)
                continue
            if labels is None:
                continue
            if data.get("complete"):
                self._complete[container_id] = labels
            else:
                self._pending.add(container_id)

    def put(self, container_id: str, labels: AgentLabels, *, complete: bool) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.folder / f"{container_id}.json"
        temp = path.with_name(f".{path.name}.tmp")
        body = {"container": container_id, "complete": complete, "labels": labels.encode()}
        temp.write_text(json.dumps(body, sort_keys=True))
        os.replace(temp, path)
        if complete:
            self._pending.discard(container_id)
            self._complete[container_id] = labels
        else:
            self._pending.add(container_id)

    def drop(self, container_id: str) -> None:
        self._complete.pop(container_id, None)
        self._pending.discard(container_id)
        with contextlib.suppress(OSError):
            (self.folder / f"{container_id}.json").unlink()

    def labels(self, container_id: str) -> AgentLabels | None:
        return self._complete.get(container_id)

    def pending(self, container_id: str) -> bool:
        return container_id in self._pending

    def container_of(self, agent_id: str) -> str | None:
        for container_id, labels in self._complete.items():
            if labels.id == agent_id:
                return container_id
        return None

    def containers(self) -> set[str]:
        return set(self._complete) | self._pending
