"""A scripted intent ("run this shell command", "write this file") in the calling CLI's tools.

Every CLI offers its own tools in its requests: claude ``Bash`` and ``Write``; gemini
``run_shell_command`` and ``write_file``; codex, in code mode, one freeform ``exec`` tool whose
JavaScript calls ``tools.exec_command`` and ``tools.apply_patch`` (or, without code mode, those
as tools of their own). The stand-in reads the offer and answers with a call the CLI will run,
with argument names taken from the offered schema. Aider offers no tools: it edits files from
*SEARCH/REPLACE* (or whole-file) blocks in the answer's text, so a ``write`` becomes such a
block.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .script import Reply

SHELL_TOOLS = ("Bash", "run_shell_command", "exec_command", "shell_command", "shell", "bash")
WRITE_TOOLS = ("Write", "write_file", "create_file")
CODE_MODE_TOOL = "exec"
PATCH_TOOL = "apply_patch"
_COMMAND_PARAMS = ("command", "cmd")
_PATH_PARAMS = ("file_path", "path", "filename", "absolute_path")
_CONTENT_PARAMS = ("content", "contents", "file_text", "text")


@dataclass(frozen=True)
class Offer:
    """One tool a request offered: its name, kind, namespace and parameter schema."""

    name: str
    kind: str = "function"  # "function" or "custom" (freeform text input)
    namespace: str | None = None
    schema: dict[str, Any] = field(default_factory=dict)

    @property
    def params(self) -> dict[str, Any]:
        props = self.schema.get("properties")
        return props if isinstance(props, dict) else {}


@dataclass(frozen=True)
class Call:
    """The tool call to send: function arguments (a dict) or a custom tool's free text."""

    name: str
    kind: str = "function"
    namespace: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    input: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "namespace": self.namespace,
            "arguments": self.arguments,
            "input": self.input,
        }


class NoToolError(LookupError):
    """The request offered no tool that can do what the reply asks."""


def plan_call(reply: Reply, offers: list[Offer]) -> Call:
    """The call that performs ``reply`` (a shell or write reply) with the offered tools."""
    by_name = {offer.name: offer for offer in offers}
    if reply.kind == "write":
        for name in WRITE_TOOLS:
            if name in by_name:
                return _write_call(by_name[name], reply)
        patch = by_name.get(PATCH_TOOL)
        if patch is not None and patch.kind == "custom":
            return Call(patch.name, "custom", patch.namespace, input=_patch(reply))
    else:
        for name in SHELL_TOOLS:
            offer = by_name.get(name)
            if offer is not None and offer.kind == "function":
                return _shell_call(offer, reply.command)
    code = by_name.get(CODE_MODE_TOOL)
    if code is not None and code.kind == "custom":
        return Call(code.name, "custom", code.namespace, input=_code_mode(reply))
    if reply.kind == "write":
        # Only a shell is offered: write the file with it.
        for name in SHELL_TOOLS:
            offer = by_name.get(name)
            if offer is not None and offer.kind == "function":
                return _shell_call(offer, _write_command(reply))
    raise NoToolError(f"no offered tool can {reply.kind}; offered: {sorted(by_name) or 'none'}")


def _pick(offer: Offer, candidates: tuple[str, ...]) -> str:
    return next((name for name in candidates if name in offer.params), candidates[0])


def _shell_call(offer: Offer, command: str) -> Call:
    key = _pick(offer, _COMMAND_PARAMS)
    value: Any = command
    if offer.params.get(key, {}).get("type") == "array":
        value = ["bash", "-lc", command]
    arguments: dict[str, Any] = {key: value}
    if "description" in offer.params:
        arguments["description"] = "Run the command the stand-in was scripted with"
    return Call(offer.name, "function", offer.namespace, arguments=arguments)


def _write_call(offer: Offer, reply: Reply) -> Call:
    arguments = {
        _pick(offer, _PATH_PARAMS): reply.path,
        _pick(offer, _CONTENT_PARAMS): reply.content,
    }
    return Call(offer.name, "function", offer.namespace, arguments=arguments)


def _patch(reply: Reply) -> str:
    lines = reply.content.splitlines() or [""]
    body = "".join(f"+{line}\n" for line in lines)
    return f"*** Begin Patch\n*** Add File: {reply.path}\n{body}*** End Patch\n"


def _code_mode(reply: Reply) -> str:
    # Codex's code mode runs this JavaScript in an isolate; its nested tools do the work.
    if reply.kind == "write":
        call = f"await tools.{PATCH_TOOL}({json.dumps(_patch(reply))})"
    else:
        call = f"await tools.exec_command({json.dumps({'cmd': reply.command})})"
    return (
        f"const r = {call};\n"
        'text(typeof r === "string" ? r : (r && r.output !== undefined ? r.output : '
        "JSON.stringify(r)));\n"
    )


def _write_command(reply: Reply) -> str:
    quoted_path = "'" + reply.path.replace("'", "'\\''") + "'"
    quoted = "'" + reply.content.replace("'", "'\\''") + "'"
    return f"printf %s {quoted} > {quoted_path}"


def text_edit(reply: Reply, instructions: str) -> str:
    """A ``write`` as text, for a CLI that edits files from its answer (aider).

    The block follows the edit format the CLI's own instructions ask for: *SEARCH/REPLACE*
    blocks (aider's ``diff`` format) or the whole file after its path.
    """
    content = reply.content if reply.content.endswith("\n") else reply.content + "\n"
    lead = f"{reply.text}\n\n" if reply.text else ""
    if "SEARCH/REPLACE" in instructions:
        return f"{lead}{reply.path}\n```\n<<<<<<< SEARCH\n=======\n{content}>>>>>>> REPLACE\n```\n"
    return f"{lead}{reply.path}\n```\n{content}```\n"
