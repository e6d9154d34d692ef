"""A turn's progress read from its CLI's output as it arrives: a tool starting, a permission the
turn was refused. Pure: bytes in, items out.

Only CLIs that stream structured events can tell: Claude Code (``stream-json``: ``tool_use``
blocks, and ``permission_denials`` in its closing ``result``) and Codex (``item.started`` for
commands, file changes, tool calls and web searches). Gemini prints one object at the end, and
aider and custom commands plain text, so they report no progress.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# What an item keeps of a tool's input (a command, a patch): enough to tell what runs.
INPUT_MAX = 2000
# A line longer than this without its end is not an event worth waiting for.
LINE_MAX = 4 * 1024 * 1024


@dataclass(frozen=True)
class ToolRunning:
    tool: str
    input: Any

    def info(self) -> dict[str, Any]:
        return {"tool": self.tool, "input": self.input}


@dataclass(frozen=True)
class PromptRefused:
    """The CLI would have asked a person for ``tool``; the turn's permissions said no."""

    tool: str
    input: Any

    def prompt(self) -> dict[str, Any]:
        return {
            "type": "permission",
            "prompt": f"allow {self.tool}?",
            "tool": self.tool,
            "input": self.input,
            "options": ["allow", "deny"],
            "canAutoRespond": True,
            "instructions": "the thread's approvalPreset does not allow this tool; it was denied",
        }


Progress = ToolRunning | PromptRefused


def _bounded(value: Any) -> Any:
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        return None
    return value if len(text) <= INPUT_MAX else text[:INPUT_MAX] + "…"


def _claude(event: dict[str, Any]) -> Iterator[Progress]:
    kind = event.get("type")
    if kind == "assistant":
        message = event.get("message")
        blocks = message.get("content") if isinstance(message, dict) else None
        for block in blocks if isinstance(blocks, list) else ():
            if isinstance(block, dict) and block.get("type") == "tool_use":
                yield ToolRunning(str(block.get("name") or "tool"), _bounded(block.get("input")))
    elif kind == "result":
        denials = event.get("permission_denials")
        for denial in denials if isinstance(denials, list) else ():
            if isinstance(denial, dict):
                tool = str(denial.get("tool_name") or "tool")
                yield PromptRefused(tool, _bounded(denial.get("tool_input")))


_CODEX_FIELDS = {
    "command_execution": "command",
    "file_change": "changes",
    "mcp_tool_call": "tool",
    "web_search": "query",
}


def _codex(event: dict[str, Any]) -> Iterator[Progress]:
    item = event.get("item")
    if event.get("type") != "item.started" or not isinstance(item, dict):
        return
    kind = str(item.get("type") or "")
    if kind in _CODEX_FIELDS:
        yield ToolRunning(kind, _bounded(item.get(_CODEX_FIELDS[kind])))


_READERS: dict[str, Callable[[dict[str, Any]], Iterator[Progress]]] = {
    "claude": _claude,
    "codex": _codex,
}


class ProgressReader:
    """Feeds a turn's stdout, piece by piece, to its CLI's event reader."""

    def __init__(self, read: Callable[[dict[str, Any]], Iterator[Progress]]) -> None:
        self._read = read
        self._pending = b""

    def feed(self, data: bytes) -> list[Progress]:
        self._pending += data
        *lines, self._pending = self._pending.split(b"\n")
        if len(self._pending) > LINE_MAX:
            self._pending = b""
        found: list[Progress] = []
        for line in lines:
            text = line.strip()
            if not text.startswith(b"{"):
                continue
            try:
                event = json.loads(text)
            except ValueError:
                continue
            if isinstance(event, dict):
                found.extend(self._read(event))
        return found


def progress_reader(agent_type: str) -> ProgressReader | None:
    """A reader for the agent type's CLI, or None when its output tells no progress."""
    read = _READERS.get(agent_type)
    return ProgressReader(read) if read is not None else None
