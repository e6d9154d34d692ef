"""How each real CLI is pointed at the stand-in model services, by its own documented settings.

Every setting reaches the agent as ordinary spawn ``env``/``credentials``: the API key (the
stand-in's tenant) as a credential, the base URL as env. ``settings`` are files a user would
keep in the agent's home (written before the first turn); they only shorten a CLI's retries of
a failing model, which the tests of model errors would otherwise wait out for minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.engine import Engine

# A turn's bound in the tests: far above what any CLI needs against the stand-in.
TURN_MS = 180_000
RESULT_KEYS = {
    "content",
    "status",
    "usage",
    "toolCalls",
    "filesChanged",
    "filesChangedTruncated",
    "sessionId",
    "durationMs",
    "raw",
}


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


def write_settings(engine: Engine, container: str, profile: CliProfile) -> None:
    """Write the profile's settings files into the agent's home, as the agent user."""
    for relative, text in profile.settings.items():
        code, out = engine.exec(
            container,
            "sh",
            "-c",
            'mkdir -p "$(dirname "$1")" && printf %s "$2" >"$1"',
            "sh",
            f"/home/agent/{relative}",
            text,
        )
        assert code == 0, out


def turn(api: httpx.Client, agent_id: str, message: str, timeout_ms: int = TURN_MS) -> Any:
    """Send ``message`` and wait for the answer (the message model, as JSON)."""
    response = api.post(
        f"/agents/{agent_id}/send",
        json={"message": message, "expectResponse": True, "timeout": timeout_ms},
        timeout=timeout_ms / 1000 + 60,
    )
    assert response.status_code == 200, response.text
    return response.json()["response"]


def spawn_fields(profile: CliProfile, agent_url: str, key: str, image: str) -> dict[str, Any]:
    """The spawn request fields of an agent of ``profile`` talking to a stand-in tenant."""
    return {
        "type": profile.type,
        "image": image,
        "env": profile.env(agent_url),
        "credentials": profile.credentials(key),
        "resources": {"memory": "1g", "cpu": 1.0},
    }


def result_of(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer's ``metadata.result``, checked to have the one shape."""
    result: dict[str, Any] = answer["metadata"]["result"]
    assert set(result) == RESULT_KEYS, result
    assert result["content"] == answer["content"]
    assert isinstance(result["durationMs"], int) and result["durationMs"] > 0
    assert set(result["usage"]) == {"inputTokens", "outputTokens", "costUsd"}
    assert set(result["toolCalls"]) == {"count", "names"}
    return result
