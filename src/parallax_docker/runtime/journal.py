"""The journal of operations under way: what a restarted runtime must finish or undo.

Every multi-step operation (spawn, stop, restart, an execution's clean-up, a turn, an upload, a
thread's start-up) writes an ``Intent`` here before its first engine call and removes it once it
has finished or fully undone what it did. An intent still on disk after a crash (or left by an
operation that could not undo its work, the engine being away) is an orphan;
``runtime/recovery.py`` settles it after the next sync with the engine. docs/reliability.md
gives the rule for each kind.

One small JSON file per intent, written atomically (temporary file, then rename) without
fsync: it has to survive the service process, not the machine. A turn's output is appended to a
sidecar file as it arrives, so that an interrupted turn's answer keeps what the CLI had said.
Nothing secret is written here: spawns record the agent's labels, never env values.

Steps are recorded as ``<kind>.<step>`` (``spawn.begun``, ``spawn.created``, ``stop.stopped``,
...); a crash test names one in ``PARALLAX_FAILPOINTS`` and the service kills itself with SIGKILL
right after recording it, the way a crash at that very moment would leave things (or, with
``:Ss``, freezes for S seconds, so that a test can take the engine away at that moment).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from parallax_docker.resources import NAME_RE
from parallax_docker.runtime.private_files import write_private

log = logging.getLogger(__name__)

Kind = Literal["spawn", "stop", "restart", "execution", "turn", "upload", "thread"]
KINDS: tuple[Kind, ...] = ("spawn", "stop", "restart", "execution", "turn", "upload", "thread")
# What an interrupted turn keeps of the CLI's output.
OUTPUT_MAX = 256 * 1024


@dataclass
class Intent:
    kind: Kind
    key: str
    data: dict[str, Any] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    container_id: str | None = None

    @property
    def name(self) -> str:
        return f"{self.kind}.{self.key}"


class Journal:
    def __init__(self, folder: Path, failpoints: Iterable[tuple[str, int, int]] = ()) -> None:
        self.folder = folder
        # Intents that a live operation of this process owns (the rest are orphans).
        self._owned: set[str] = set()
        self._failpoints = {point: [count, pause] for point, count, pause in failpoints}

    # -- writing ----------------------------------------------------------------------------

    def begin(
        self, kind: Kind, key: str, *, container_id: str | None = None, **data: Any
    ) -> Intent:
        if not NAME_RE.match(key):
            raise ValueError("not an agent or execution id")
        intent = Intent(kind=kind, key=key, data=data, container_id=container_id)
        if kind == "turn":
            with contextlib.suppress(OSError):
                self._output_path(intent).unlink()
        self._write(intent)
        self._owned.add(intent.name)
        self._reached(f"{kind}.begun")
        return intent

    def note(
        self,
        intent: Intent,
        *,
        step: str | None = None,
        container_id: str | None = None,
        **data: Any,
    ) -> None:
        """Record progress (the container made, a step passed) before the next engine call."""
        if container_id is not None:
            intent.container_id = container_id
        if step is not None:
            data["step"] = step
        intent.data.update(data)
        self._write(intent)
        if step is not None:
            self._reached(f"{intent.kind}.{step}")

    def _reached(self, point: str) -> None:
        found = self._failpoints.get(point)
        if found is None:
            return
        left, pause_s = found
        if left > 1:
            found[0] = left - 1
            return
        if pause_s:
            # Frozen whole, event loop and all, as a stalled process would be.
            log.warning("failpoint %s reached: the service freezes for %d s", point, pause_s)
            del self._failpoints[point]
            time.sleep(pause_s)
            return
        log.warning("failpoint %s reached: the service kills itself", point)
        os.kill(os.getpid(), signal.SIGKILL)

    def append_output(self, intent: Intent, chunk: bytes) -> None:
        """Keep a turn's output as it arrives (up to OUTPUT_MAX)."""
        path = self._output_path(intent)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        except OSError:
            return
        room = OUTPUT_MAX - size
        if room <= 0:
            return
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, chunk[:room])
            finally:
                os.close(fd)
        except OSError as exc:
            log.debug("could not keep a turn's output: %s", exc.strerror)

    def output(self, intent: Intent) -> bytes:
        try:
            return self._output_path(intent).read_bytes()[:OUTPUT_MAX]
        except OSError:
            return b""

    def end(self, intent: Intent) -> None:
        """The operation finished or undid everything: forget it."""
        self._owned.discard(intent.name)
        for path in (self._path(intent.name), self._output_path(intent)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def release(self, intent: Intent) -> None:
        """The operation gives up on it (it could not undo its work): recovery takes it over."""
        self._owned.discard(intent.name)

    def claim(self, intent: Intent) -> bool:
        """Recovery takes an orphan; False when some operation owns it already."""
        if intent.name in self._owned:
            return False
        self._owned.add(intent.name)
        return True

    # -- reading ----------------------------------------------------------------------------

    def orphans(self) -> list[Intent]:
        """Intents on disk that no live operation owns, oldest first."""
        found = []
        try:
            paths = sorted(self.folder.glob("*.json"))
        except OSError:
            return []
        for path in paths:
            if path.stem in self._owned:
                continue
            intent = _read(path)
            if intent is None:
                log.warning("removing an unreadable journal entry %s", path.name)
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            found.append(intent)
        return sorted(found, key=lambda i: i.started_at)

    def owned(self, kind: Kind, key: str) -> bool:
        return f"{kind}.{key}" in self._owned

    # -- files ------------------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def _output_path(self, intent: Intent) -> Path:
        return self.folder / f"{intent.name}.out"

    def _write(self, intent: Intent) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        body = {
            "kind": intent.kind,
            "key": intent.key,
            "data": intent.data,
            "startedAt": intent.started_at,
            "container": intent.container_id,
        }
        write_private(self._path(intent.name), json.dumps(body, sort_keys=True).encode())


def _read(path: Path) -> Intent | None:
    try:
        body = json.loads(path.read_text())
        kind = body["kind"]
        key = str(body["key"])
        if kind not in KINDS or not NAME_RE.match(key) or path.stem != f"{kind}.{key}":
            return None
        container = body.get("container")
        return Intent(
            kind=kind,
            key=key,
            data=dict(body.get("data") or {}),
            started_at=float(body.get("startedAt") or 0.0),
            container_id=str(container) if container else None,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
