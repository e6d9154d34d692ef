"""How each real CLI is pointed at the stand-in model services, by its own documented settings.

Every setting reaches the agent as ordinary spawn ``env``/``credentials``: the API key (the
stand-in's tenant) as a credential, the base URL as env. ``settings`` are files a user would
keep in the agent's home (written before the first turn); they only shorten a CLI's retries of
a failing model, which the tests of model errors would otherwise wait out for minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CliProfile:
    type: str
    key_name: str
    base_url_name: str
    base_url_path: str
    # How a process of the CLI shows in /proc/<pid>/cmdline (to check none is left running).
    process: str
    extra_env: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    # Aider edits files from its answer's text: a write reply needs no answer after it.
    edits_from_text: bool = False

    def env(self, agent_url: str) -> dict[str, str]:
        return {self.base_url_name: f"{agent_url}{self.base_url_path}", **self.extra_env}

    def credentials(self, key: str) -> dict[str, dict[str, str]]:
        return {"custom": {self.key_name: key}}


PROFILES: dict[str, CliProfile] = {
    "claude": CliProfile(
        type="claude",
        key_name="ANTHROPIC_API_KEY",
        base_url_name="ANTHROPIC_BASE_URL",
        base_url_path="",
        process="claude",
        # Claude's documented retry setting (default 10 tries, about three minutes).
        extra_env={"CLAUDE_CODE_MAX_RETRIES": "1"},
    ),
    "codex": CliProfile(
        type="codex",
        key_name="OPENAI_API_KEY",
        base_url_name="OPENAI_BASE_URL",
        base_url_path="/v1",
        process="codex",
    ),
    "gemini": CliProfile(
        type="gemini",
        key_name="GEMINI_API_KEY",
        base_url_name="GOOGLE_GEMINI_BASE_URL",
        base_url_path="",
        process="gemini",
        # gemini-cli's user settings: 2 tries instead of 10 (from 5 s up to 30 s apart).
        settings={".gemini/settings.json": '{"general": {"maxAttempts": 2}}'},
    ),
    "aider": CliProfile(
        type="aider",
        key_name="OPENAI_API_KEY",
        base_url_name="OPENAI_API_BASE",
        base_url_path="/v1",
        process="aider",
        edits_from_text=True,
    ),
}
