"""What an agent changed in its workspace: ``GET /agents/{id}/diff`` and changes between turns.

At spawn, before the agent is ready, a snapshot of its workspace is taken (``baseline``) and
kept on disk (runtime/snapshots.py). The diff then compares against it: when the workspace is
in a git work tree, git says what changed (a unified diff of the work tree, untracked files
included, against the HEAD at spawn, and the commits made since); otherwise a new snapshot is
compared file by file (added, modified, deleted). Everything runs inside the agent as its own
user (runtime/workspace_scripts.py).

Changes over any span (several turns, since any moment): ``snapshot(agent_id)`` at its start,
then ``changes_since(agent_id, snapshot)``. (One turn's ``filesChanged`` is listed by the turn
wrapper itself, runtime/workspace_changes.py, in the same vocabulary.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import cast

from parallax_docker.backends.base import Backend, ExecExit, ExecSpec
from parallax_docker.config import Settings
from parallax_docker.errors import (
    AgentStateError,
    EngineError,
    FilesUnavailableError,
    ParallaxError,
)
from parallax_docker.file_models import Baseline, Change, ChangedFile, Commit, DiffResponse
from parallax_docker.resources import parse_volume
from parallax_docker.runtime.agent_record import AgentRecord
from parallax_docker.runtime.engine_link import EngineLink
from parallax_docker.runtime.paths import WORKSPACE
from parallax_docker.runtime.registry import Registry
from parallax_docker.runtime.snapshots import FileState, Snapshot, SnapshotStore, changed_files
from parallax_docker.runtime.workspace_scripts import GIT_DIFF, SNAPSHOT

log = logging.getLogger(__name__)

# Files up to this size are hashed in a snapshot; larger ones are compared by size and time.
HASH_MAX_KB = 8 * 1024
SNAPSHOT_MAX_BYTES = 64 * 1024 * 1024
BASELINE_TIMEOUT_S = 30.0
DIFF_TIMEOUT_S = 120.0
_ENV = {"LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0", "GIT_PAGER": "cat"}
_KINDS = {"regular file": "file", "regular empty file": "file", "symbolic link": "link"}
_CHANGES = {"A": "added", "C": "added", "M": "modified", "T": "modified", "D": "deleted"}


def workspace_root(record: AgentRecord) -> str:
    """The agent's workdir when it lies in /workspace, else /workspace itself."""
    workdir = record.labels.workdir
    if workdir and (workdir == WORKSPACE or workdir.startswith(WORKSPACE + "/")):
        return workdir.rstrip("/")
    return WORKSPACE


def on_fresh_tmpfs(record: AgentRecord) -> bool:
    """Whether the workspace lies on the runtime's own tmpfs, empty when the container starts:
    no volume of the request is mounted at it, above it or inside it."""
    root = workspace_root(record)
    for entry in record.labels.volumes:
        target = parse_volume(entry).target.rstrip("/") or "/"
        if target in (root, "/") or root.startswith(target + "/") or target.startswith(root + "/"):
            return False
    return True


class Workspace:
    def __init__(
        self,
        *,
        settings: Settings,
        backend: Backend,
        registry: Registry,
        engine: EngineLink,
        store: SnapshotStore,
    ) -> None:
        self._backend = backend
        self._registry = registry
        self._engine = engine
        self._store = store
        self._max_diff_bytes = settings.max_diff_bytes

    # -- the verbs ---------------------------------------------------------------------------

    async def baseline(self, record: AgentRecord, container_id: str) -> None:
        """Snapshot a new agent's workspace (the spawn waits: the diff's base must come
        before the agent's first change). A failure leaves the agent without a base.

        A workspace on the runtime's own tmpfs is known to be empty at spawn: its snapshot is
        taken without an ``exec`` (which would cost every spawn, pooled ones too, the time the
        engine takes to run a process in the container)."""
        root = workspace_root(record)
        try:
            if on_fresh_tmpfs(record):
                snapshot = Snapshot(root=root, taken_at=time.time())
            else:
                async with asyncio.timeout(BASELINE_TIMEOUT_S):
                    snapshot = await self._take(container_id, root)
            self._store.save(record.id, snapshot)
        except (ParallaxError, OSError, TimeoutError) as exc:
            log.warning(
                "no workspace snapshot at spawn (%s); its diff compares against nothing",
                getattr(exc, "code", type(exc).__name__),
                extra={"agent_id": record.id},
            )
        self._store.prune(r.id for r in self._registry)

    async def snapshot(self, agent_id: str) -> Snapshot:
        record, container_id = self._running(agent_id)
        return await self._take(container_id, workspace_root(record))

    async def changes_since(self, agent_id: str, snapshot: Snapshot) -> list[ChangedFile]:
        """The files added, modified and deleted since ``snapshot``."""
        return _changes(snapshot, await self.snapshot(agent_id))

    async def diff(self, agent_id: str) -> DiffResponse:
        record, container_id = self._running(agent_id)
        root = workspace_root(record)
        base = self._store.load(agent_id)
        since = None if base is None else Baseline(taken_at=base.taken_at, head=base.head)
        git = await self._git_diff(container_id, root, base.head if base is not None else None)
        if git is not None:
            git.since = since
            return git
        now = await self._take(container_id, root)
        before = base if base is not None else Snapshot(root=root, taken_at=0.0)
        return DiffResponse(
            mode="files",
            root=root,
            since=since,
            files=_changes(before, now),
            truncated=now.truncated,
        )

    # -- inside the agent --------------------------------------------------------------------

    def _running(self, agent_id: str) -> tuple[AgentRecord, str]:
        self._engine.require()
        record = self._registry.get(agent_id)
        container_id = record.container_id
        if container_id is None or record.state is None or not record.state.running:
            raise AgentStateError(f"agent {agent_id!r} is not running")
        return record, container_id

    async def _run(
        self, container_id: str, script: str, args: tuple[str, ...], limit: int, timeout_s: float
    ) -> tuple[bytes, bool, int]:
        """(stdout up to ``limit``, whether it was cut, exit code) of ``script`` in the agent."""
        spec = ExecSpec(argv=("/bin/sh", "-c", script, "parallax-workspace", *args), env=_ENV)
        out = bytearray()
        code = -1
        cut = False
        items = self._backend.stream_exec(container_id, spec)
        try:
            async with asyncio.timeout(timeout_s):
                async for item in items:
                    if isinstance(item, ExecExit):
                        code = item.exit_code
                    elif item.stream == "stdout":
                        room = limit - len(out)
                        if len(item.data) > room:
                            out.extend(item.data[:room])
                            cut = True
                            break
                        out.extend(item.data)
        finally:
            # Closing the stream hangs up on a process cut short (backends/base.py).
            closing = getattr(items, "aclose", None)
            if closing is not None:
                await closing()
        if code in (126, 127) and not cut:
            raise FilesUnavailableError("the agent's image has no /bin/sh, find or stat")
        return bytes(out), cut, code

    async def _take(self, container_id: str, root: str) -> Snapshot:
        raw, cut, code = await self._run(
            container_id, SNAPSHOT, (root, str(HASH_MAX_KB)), SNAPSHOT_MAX_BYTES, DIFF_TIMEOUT_S
        )
        if code not in (0, -1) and not cut:
            raise EngineError(f"the workspace snapshot failed in the agent (exit {code})")
        return parse_snapshot(raw, root, truncated=cut)

    async def _git_diff(
        self, container_id: str, root: str, base: str | None
    ) -> DiffResponse | None:
        raw, cut, code = await self._run(
            container_id,
            GIT_DIFF,
            (root, base or ""),
            self._max_diff_bytes + SNAPSHOT_MAX_BYTES,
            DIFF_TIMEOUT_S,
        )
        if code in (65, 66) and not cut:
            return None  # not a git work tree (or no git): compare snapshots instead
        if code not in (0, -1) and not cut:
            raise EngineError(f"git diff failed in the agent (exit {code})")
        return parse_git_diff(raw, root, self._max_diff_bytes, cut)


def _changes(before: Snapshot, after: Snapshot) -> list[ChangedFile]:
    return [
        ChangedFile(path=path, change=cast(Change, change), size=size)
        for path, change, size in changed_files(before, after)
    ]


def parse_snapshot(raw: bytes, root: str, *, truncated: bool = False) -> Snapshot:
    lines = raw.decode("utf-8", "surrogateescape").split("\n")
    stats: dict[str, tuple[str, int, int]] = {}
    hashes: dict[str, str] = {}
    git = False
    head: str | None = None
    section = ""
    for line in lines:
        if line.startswith("root ") and not section:
            root = line[5:]
        elif line.startswith("git ") and not section:
            git, head = True, (line[4:].strip() or None)
        elif line in ("stat", "hash", "end"):
            section = line
        elif section == "stat":
            parts = line.split("|", 3)
            if len(parts) == 4 and parts[1].isdigit() and parts[2].isdigit():
                kind = _KINDS.get(parts[0], "other")
                stats[parts[3].removeprefix("./")] = (kind, int(parts[1]), int(parts[2]))
        elif section == "hash" and len(line) > 66 and line[64:66] == "  ":
            hashes[line[66:].removeprefix("./")] = line[:64]
    files = {
        path: FileState(kind, size, mtime, hashes.get(path))
        for path, (kind, size, mtime) in stats.items()
    }
    return Snapshot(
        root=root,
        taken_at=time.time(),
        files=files,
        git=git,
        head=head,
        truncated=truncated or section != "end",
    )


def parse_git_diff(raw: bytes, root: str, max_diff_bytes: int, cut: bool) -> DiffResponse:
    head_part, _, rest = raw.partition(b"\0\0")
    names_part, _, diff_part = rest.partition(b"\0\0")
    if names_part and diff_part.startswith(b"\0"):
        # -z ends the last name with its own NUL, just before the section mark.
        diff_part = diff_part[1:]
    header, _, log_part = head_part.decode("utf-8", "replace").partition("\n")
    _, _, log_part = log_part.partition("\n")  # the base line: the caller knows it
    head = header.removeprefix("head ").strip() or None
    commits = []
    for record in log_part.split("\x1e"):
        fields = record.strip("\n").split("\x1f")
        if len(fields) == 4:
            commits.append(
                Commit(sha=fields[0], author=fields[1], date=fields[2], subject=fields[3])
            )
    files: list[ChangedFile] = []
    tokens = names_part.decode("utf-8", "surrogateescape").split("\0")
    index = 0
    while index < len(tokens) and tokens[index]:
        status = tokens[index]
        if status.startswith("R") and index + 2 < len(tokens):
            files.append(
                ChangedFile(path=tokens[index + 2], change="renamed", old_path=tokens[index + 1])
            )
            index += 3
        elif index + 1 < len(tokens):
            files.append(
                ChangedFile(
                    path=tokens[index + 1],
                    change=cast(Change, _CHANGES.get(status[:1], "modified")),
                )
            )
            index += 2
        else:
            break
    truncated = cut or len(diff_part) > max_diff_bytes
    return DiffResponse(
        mode="git",
        root=root,
        files=files,
        commits=commits,
        head=head,
        diff=diff_part[:max_diff_bytes].decode("utf-8", "replace"),
        truncated=truncated,
    )
