"""Which files under /workspace a turn changed (added, modified, deleted).

The turn wrapper lists /workspace before the CLI starts (``SNAPSHOT``: one NUL-terminated
record ``<mtime> <size> <inode> <path>`` per file or symlink, GNU find's ``-printf``) into the
agent's private ``/run/parallax``. When the turn is over (answered, failed or interrupted) one
more exec (``CHANGES_SCRIPT``) lists it again and prints only the records that differ
(``comm -3 -z`` of the sorted lists), so the service reads a few records, not the whole tree.
A path on one side only was added or deleted; on both sides, modified (its time, size or inode
changed: a file replaced by a rename counts).

Both listings stop at ``LIST_MAX_BYTES``; a turn whose workspace is larger reports what it saw
and ``truncated``. Images without GNU find (``-printf``) cannot be listed: the turn reports
``None`` (unknown), not an empty list. Directories are not reported, only what they hold;
another filesystem mounted under /workspace is not looked into (``-xdev``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Literal

from parallax_docker.backends.base import Backend, ExecExit, ExecSpec
from parallax_docker.errors import ParallaxError
from parallax_docker.security import AGENT_WORKSPACE

log = logging.getLogger(__name__)

LIST_MAX_BYTES = 8 * 1024 * 1024
# The most changed paths one turn reports (the rest is cut, and the list marked truncated).
MAX_CHANGES = 1000
CHANGES_TIMEOUT_S = 30.0

_LIST = (
    f"find {AGENT_WORKSPACE} -xdev \\( -type f -o -type l \\) "
    f"-printf '%T@ %s %i %P\\0' 2>/dev/null | head -c {LIST_MAX_BYTES}"
)
# Run by the turn wrapper ($d: its state dir, $turn: the turn id) before the CLI starts.
SNAPSHOT = (
    f"if find {AGENT_WORKSPACE} -maxdepth 0 -printf '' 2>/dev/null; then "
    f'{_LIST} >"$d/parallax-turn-$turn.files" || :; fi'
)
# $1: the turn id. Prints "ok", maybe "truncated", then the differing records (NUL-separated).
CHANGES_SCRIPT = f"""d=/run/parallax; {{ [ -d "$d" ] && [ -w "$d" ]; }} || d=/tmp
f="$d/parallax-turn-$1.files"
[ -r "$f" ] || exit 0
sort -z "$f" >"$f.before" && {_LIST} | sort -z >"$f.after" || {{ rm -f "$f" "$f".*; exit 0; }}
printf 'ok\\0'
for side in "$f.before" "$f.after"; do
    [ "$(wc -c <"$side")" -lt {LIST_MAX_BYTES} ] || {{ printf 'truncated\\0'; break; }}
done
comm -3 -z "$f.before" "$f.after"
rm -f "$f" "$f.before" "$f.after"
"""

Change = Literal["added", "modified", "deleted"]


@dataclass(frozen=True)
class FileChange:
    path: str
    change: Change


@dataclass(frozen=True)
class WorkspaceChanges:
    files: tuple[FileChange, ...]
    truncated: bool = False


def changes_argv(turn_id: str) -> tuple[str, ...]:
    return ("/bin/sh", "-c", CHANGES_SCRIPT, "parallax-changes", turn_id)


def parse_changes(output: bytes) -> WorkspaceChanges | None:
    """The changes in ``CHANGES_SCRIPT``'s output; None when the workspace could not be listed."""
    records = output.split(b"\0")
    if not records or records[0] != b"ok":
        return None
    truncated = False
    before: set[str] = set()
    after: set[str] = set()
    for record in records[1:]:
        if record == b"truncated":
            truncated = True
            continue
        side = after if record.startswith(b"\t") else before
        fields = record.lstrip(b"\t").split(b" ", 3)
        if len(fields) == 4 and fields[3]:
            side.add(fields[3].decode("utf-8", "replace"))
    changes = [
        FileChange(f"{AGENT_WORKSPACE}/{path}", _kind(path in before, path in after))
        for path in sorted(before | after)
    ]
    if len(changes) > MAX_CHANGES:
        changes, truncated = changes[:MAX_CHANGES], True
    return WorkspaceChanges(tuple(changes), truncated)


def _kind(was: bool, is_now: bool) -> Change:
    if was and is_now:
        return "modified"
    return "added" if is_now else "deleted"


async def collect_changes(
    backend: Backend, container_id: str, turn_id: str
) -> WorkspaceChanges | None:
    """What turn ``turn_id`` changed in the agent's workspace (None: it cannot be known)."""
    output = bytearray()
    spec = ExecSpec(argv=changes_argv(turn_id), stdin=None)
    try:
        async with asyncio.timeout(CHANGES_TIMEOUT_S):
            async for item in backend.stream_exec(container_id, spec):
                if not isinstance(item, ExecExit) and item.stream == "stdout":
                    output.extend(item.data)
    except (ParallaxError, TimeoutError) as exc:
        log.info("could not list the workspace after turn %s: %s", turn_id, type(exc).__name__)
        return None
    return parse_changes(bytes(output))
