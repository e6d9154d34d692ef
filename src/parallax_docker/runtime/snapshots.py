"""Snapshots of an agent's workspace, and where the one taken at spawn is kept (on disk).

A snapshot lists every file and link under the workspace root (``.git`` aside) with its size,
modification time and, up to a size, its SHA-256, plus the git HEAD when the root is in a git
work tree. The spawn's snapshot is the diff's base (runtime/workspace.py); it is written under
``PARALLAX_STATE_DIR/workspace/<instance>/<agent id>.json`` so that a restarted service still
compares against it, and dropped with the agent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parallax_docker.resources import NAME_RE
from parallax_docker.runtime.private_files import write_private

log = logging.getLogger(__name__)

# A snapshot file of an agent no longer known is kept this long (its spawn may be under way).
PRUNE_GRACE_S = 600.0


@dataclass(frozen=True)
class FileState:
    kind: str  # "file", "link" or "other"
    size: int
    mtime: int
    sha256: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """The workspace at one moment; compare two with ``changed_files``."""

    root: str
    taken_at: float
    files: Mapping[str, FileState] = field(default_factory=dict)
    git: bool = False
    head: str | None = None
    truncated: bool = False

    def encode(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "takenAt": self.taken_at,
            "git": self.git,
            "head": self.head,
            "truncated": self.truncated,
            "files": {
                path: [state.kind, state.size, state.mtime, state.sha256]
                for path, state in self.files.items()
            },
        }

    @classmethod
    def decode(cls, body: Mapping[str, Any]) -> Snapshot:
        files = {
            str(path): FileState(str(kind), int(size), int(mtime), sha if sha else None)
            for path, (kind, size, mtime, sha) in dict(body.get("files") or {}).items()
        }
        return cls(
            root=str(body["root"]),
            taken_at=float(body["takenAt"]),
            files=files,
            git=bool(body.get("git")),
            head=str(body["head"]) if body.get("head") else None,
            truncated=bool(body.get("truncated")),
        )


def changed_files(before: Snapshot, after: Snapshot) -> list[tuple[str, str, int | None]]:
    """(path, "added" | "modified" | "deleted", size now) for every path that differs.

    A file whose size and time are unchanged is taken as unchanged; one whose time changed but
    whose hash (when both have one) is the same is unchanged too.
    """
    found: list[tuple[str, str, int | None]] = []
    for path, now in after.files.items():
        then = before.files.get(path)
        if then is None:
            found.append((path, "added", now.size))
        elif _differs(then, now):
            found.append((path, "modified", now.size))
    found.extend((path, "deleted", None) for path in before.files if path not in after.files)
    return sorted(found)


def _differs(then: FileState, now: FileState) -> bool:
    if then.kind != now.kind or then.size != now.size:
        return True
    if then.sha256 and now.sha256:
        return then.sha256 != now.sha256
    return then.mtime != now.mtime


class SnapshotStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, agent_id: str) -> Path:
        if not NAME_RE.match(agent_id):
            raise ValueError("not an agent id")
        return self.folder / f"{agent_id}.json"

    def save(self, agent_id: str, snapshot: Snapshot) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(self._path(agent_id), json.dumps(snapshot.encode()).encode())

    def load(self, agent_id: str) -> Snapshot | None:
        try:
            return Snapshot.decode(json.loads(self._path(agent_id).read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("unreadable workspace snapshot of %s: %s", agent_id, type(exc).__name__)
            return None

    def prune(self, keep: Iterable[str], now: float | None = None) -> list[str]:
        """Remove the snapshots of agents not in ``keep`` (older than the grace); their ids."""
        kept = set(keep)
        now = time.time() if now is None else now
        removed: list[str] = []
        try:
            paths = list(self.folder.glob("*.json"))
        except OSError:
            return removed
        for path in paths:
            if path.stem in kept:
                continue
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > PRUNE_GRACE_S:
                    path.unlink()
                    removed.append(path.stem)
        return removed
