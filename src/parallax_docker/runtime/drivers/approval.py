"""A thread's approval preset in each CLI's own permission terms (pure tables, no I/O).

The four presets say what an agent may do without a person's approval (upstream Parallax's
``readonly``, ``standard``, ``permissive``, ``autonomous``). A turn here is headless: nobody can
answer a permission prompt, so whatever a preset would ask about is denied. Each CLI gets the
flags that make it so:

| preset | reads | web | file edits, sub-agents | shell |
|---|---|---|---|---|
| readonly | yes | no | no | no |
| standard | yes | yes | denied (would ask) | denied (would ask) |
| permissive | yes | yes | yes | denied (would ask) |
| autonomous | yes | yes | yes | yes (the container is the sandbox) |

Codex enforces anything short of autonomous with its own sandbox (bubblewrap), which needs user
namespaces that the hardened container does not give; those presets are refused for codex
(``supported``) rather than promised and not kept. A custom image gets the preset in
``PARALLAX_APPROVAL_PRESET`` and its command decides.
"""

from __future__ import annotations

from parallax_docker.thread_models import ApprovalPreset

# Claude Code's tools by what they do (its --allowedTools / --disallowedTools names).
_CLAUDE_READ = ("Read", "Grep", "Glob", "LS", "NotebookRead", "TodoWrite")
_CLAUDE_WEB = ("WebFetch", "WebSearch")
_CLAUDE_EDIT = ("Write", "Edit", "MultiEdit", "NotebookEdit", "Task", "Agent")
_CLAUDE_SHELL = ("Bash",)
# dontAsk: anything not allowed below is denied instead of waiting for a prompt's answer.
_CLAUDE: dict[ApprovalPreset, tuple[str, ...]] = {
    ApprovalPreset.READONLY: (
        "--permission-mode",
        "dontAsk",
        "--allowedTools",
        *_CLAUDE_READ,
        "--disallowedTools",
        *_CLAUDE_WEB,
        *_CLAUDE_EDIT,
        *_CLAUDE_SHELL,
    ),
    ApprovalPreset.STANDARD: (
        "--permission-mode",
        "dontAsk",
        "--allowedTools",
        *_CLAUDE_READ,
        *_CLAUDE_WEB,
    ),
    ApprovalPreset.PERMISSIVE: (
        "--permission-mode",
        "dontAsk",
        "--allowedTools",
        *_CLAUDE_READ,
        *_CLAUDE_WEB,
        *_CLAUDE_EDIT,
    ),
    ApprovalPreset.AUTONOMOUS: ("--permission-mode", "bypassPermissions"),
}
# Gemini CLI's own approval modes; headless, a tool that would ask is not run.
_GEMINI: dict[ApprovalPreset, tuple[str, ...]] = {
    ApprovalPreset.READONLY: ("--approval-mode", "plan"),
    ApprovalPreset.STANDARD: ("--approval-mode", "default"),
    ApprovalPreset.PERMISSIVE: ("--approval-mode", "auto_edit"),
    ApprovalPreset.AUTONOMOUS: ("--approval-mode", "yolo"),
}
# Aider edits files unless it runs dry; --yes-always still declines shell commands.
_AIDER: dict[ApprovalPreset, tuple[str, ...]] = {
    ApprovalPreset.READONLY: ("--dry-run", "--no-suggest-shell-commands", "--no-detect-urls"),
    ApprovalPreset.STANDARD: ("--dry-run", "--no-suggest-shell-commands"),
    ApprovalPreset.PERMISSIVE: ("--yes-always", "--no-suggest-shell-commands"),
    ApprovalPreset.AUTONOMOUS: ("--yes-always", "--no-suggest-shell-commands"),
}
_CODEX_AUTONOMOUS = ("--dangerously-bypass-approvals-and-sandbox",)


def claude_flags(preset: ApprovalPreset) -> tuple[str, ...]:
    return _CLAUDE[preset]


def gemini_flags(preset: ApprovalPreset) -> tuple[str, ...]:
    return _GEMINI[preset]


def aider_flags(preset: ApprovalPreset) -> tuple[str, ...]:
    return _AIDER[preset]


def codex_flags(preset: ApprovalPreset) -> tuple[str, ...]:
    if preset != ApprovalPreset.AUTONOMOUS:
        raise ValueError(unsupported_reason("codex", preset))
    return _CODEX_AUTONOMOUS


def unsupported_reason(agent_type: str, preset: ApprovalPreset) -> str:
    return (
        f"approvalPreset {preset.value!r} cannot be kept for {agent_type}: its own sandbox needs "
        "user namespaces, which the hardened container does not give"
    )


def supported(agent_type: str, preset: ApprovalPreset) -> bool:
    """Whether the agent type's CLI can be held to ``preset`` in the container."""
    return agent_type != "codex" or preset == ApprovalPreset.AUTONOMOUS
