"""Every CLI, for real: its project image, hardened as always, against the stand-in models.

Each of claude, codex, gemini and aider answers a plain task, runs a tool that changes
/workspace, resumes its session on the next turn, reports a failing model as a turn error with a
code, and is interrupted cleanly by a turn timeout. The stand-in's record of what each CLI sent
is checked along with the answer's one result shape (``metadata.result``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.cli_profiles import PROFILES, TURN_MS, CliProfile, result_of, turn
from tests.support.engine import Engine
from tests.support.polling import poll
from tests.support.standins.client import Tenant
from tests.support.standins.script import Reply

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLIS = sorted(PROFILES)
# The failures each CLI is shown to report (aider retries any of them for about 80 s, so it is
# shown one).
ERRORS = [
    (cli, error)
    for cli in CLIS
    for error in (("500",) if cli == "aider" else ("429", "500", "garbage"))
]
CODES = {"429": "MODEL_RATE_LIMITED", "500": "MODEL_ERROR", "garbage": "MODEL_ERROR"}


@pytest.fixture(params=CLIS)
def profile(request: pytest.FixtureRequest) -> CliProfile:
    return PROFILES[request.param]


def cli_processes(engine: Engine, container: str, name: str) -> list[str]:
    code, output = engine.exec(
        container,
        "sh",
        "-c",
        "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' <$f; echo; done 2>/dev/null",
    )
    assert code == 0
    return [line for line in output.splitlines() if name in line and "/proc/" not in line]


def test_cli_answers_a_plain_task(
    api: httpx.Client, cli_agent: Callable[..., dict[str, Any]], tenant: Tenant, profile: CliProfile
) -> None:
    tenant.answer("The answer is 42.", input_tokens=321, output_tokens=17)
    agent = cli_agent(profile)
    answer = turn(api, agent["id"], "What is six times seven?")
    assert answer["type"] == "response", answer
    assert answer["content"] == "The answer is 42."
    result = result_of(answer)
    assert result["status"] == "completed"
    assert result["toolCalls"] == {"count": 0, "names": []}
    assert result["filesChanged"] == []
    assert result["sessionId"]
    assert result["raw"]
    # What the model reported for its one main call (gemini adds its router's side call).
    assert result["usage"]["inputTokens"] >= 321
    assert result["usage"]["outputTokens"] >= 17
    main = tenant.requests(main_only=True)
    assert len(main) == 1, [r["path"] for r in main]
    assert any("six times seven" in text for text in main[0]["transcript"])


def test_cli_runs_a_tool_that_changes_the_workspace_then_answers(
    api: httpx.Client,
    cli_agent: Callable[..., dict[str, Any]],
    tenant: Tenant,
    profile: CliProfile,
    engine: Engine,
) -> None:
    content = f"made by {profile.type}\n"
    if profile.edits_from_text:
        tenant.write("out.txt", content, then=None, text="Here is the file.")
    elif profile.type == "gemini":
        tenant.write("/workspace/out.txt", content, then="I wrote out.txt.")
    else:
        tenant.shell(f"printf 'made by {profile.type}\\n' > /workspace/out.txt", "I wrote out.txt.")
    agent = cli_agent(profile)
    answer = turn(api, agent["id"], "Write out.txt, please.")
    assert answer["type"] == "response", answer
    code, text = engine.exec(agent["containerName"], "cat", "/workspace/out.txt")
    assert (code, text) == (0, content)
    result = result_of(answer)
    assert result["status"] == "completed"
    assert result["filesChanged"] == [{"path": "/workspace/out.txt", "change": "added"}]
    assert result["toolCalls"]["count"] >= 1
    assert result["toolCalls"]["names"]
    main = tenant.requests(main_only=True)
    assert main[0]["call"] is not None or profile.edits_from_text
    if not profile.edits_from_text:
        # The tool's result went back to the model, which then answered.
        assert len(main) == 2, [r["call"] for r in main]
        assert len(main[1]["transcript"]) > len(main[0]["transcript"])
        assert answer["content"] == "I wrote out.txt."


def test_cli_resumes_its_session_on_the_next_turn(
    api: httpx.Client, cli_agent: Callable[..., dict[str, Any]], tenant: Tenant, profile: CliProfile
) -> None:
    tenant.answer("Noted: zebra.")
    tenant.answer("The word was zebra.")
    agent = cli_agent(profile)
    first = turn(api, agent["id"], "Remember the word zebra.")
    second = turn(api, agent["id"], "Which word did I ask you to remember?")
    assert (first["type"], second["type"]) == ("response", "response"), (first, second)
    assert second["content"] == "The word was zebra."
    assert result_of(second)["sessionId"] == result_of(first)["sessionId"]
    last = tenant.requests(main_only=True)[-1]["transcript"]
    assert any("Remember the word zebra." in text for text in last), last
    assert any("Noted: zebra." in text for text in last), last


@pytest.mark.parametrize(("cli", "error"), ERRORS, ids=[f"{c}-{e}" for c, e in ERRORS])
def test_cli_reports_a_failing_model_as_a_turn_error_with_a_code(
    api: httpx.Client,
    cli_agent: Callable[..., dict[str, Any]],
    tenant: Tenant,
    cli: str,
    error: str,
) -> None:
    tenant.fail(error)
    agent = cli_agent(PROFILES[cli])
    started = time.monotonic()
    answer = turn(api, agent["id"], "Say hello.")
    took = time.monotonic() - started
    assert answer["type"] == "error", answer
    assert answer["metadata"]["code"] == CODES[error], answer["metadata"]
    assert result_of(answer)["status"] == "failed"
    # Reported when the CLI gave up, long before the turn's timeout.
    assert took < TURN_MS / 1000 / 2, f"took {took:.0f}s"
    assert len(tenant.requests(main_only=True)) >= 1
    assert api.get(f"/agents/{agent['id']}").json()["status"] == "ready"


def test_cli_turn_past_its_timeout_is_interrupted_cleanly(
    api: httpx.Client,
    cli_agent: Callable[..., dict[str, Any]],
    tenant: Tenant,
    profile: CliProfile,
    engine: Engine,
) -> None:
    tenant.queue(Reply(kind="error", error="hang"), Reply(text="Back again."))
    agent = cli_agent(profile)
    started = time.monotonic()
    answer = turn(api, agent["id"], "Take your time.", timeout_ms=8000)
    took = time.monotonic() - started
    assert answer["type"] == "error", answer
    assert answer["metadata"]["code"] == "TURN_TIMEOUT"
    assert result_of(answer)["status"] == "interrupted"
    assert took < 8 + 10, f"took {took:.1f}s"
    # The model call was made and never answered; the CLI is gone, the agent usable.
    assert tenant.requests(main_only=True)
    assert cli_processes(engine, agent["containerName"], profile.process) == []
    assert api.get(f"/agents/{agent['id']}").json()["status"] == "ready"
    again = turn(api, agent["id"], "Still there?")
    assert (again["type"], again["content"]) == ("response", "Back again."), again


def test_cli_session_resumes_after_the_agent_restarts(
    api: httpx.Client,
    cli_agent: Callable[..., dict[str, Any]],
    tenant: Tenant,
    profile: CliProfile,
) -> None:
    tenant.answer("Noted: walrus.")
    tenant.answer("The word was walrus.")
    agent = cli_agent(profile)
    first = turn(api, agent["id"], "Remember the word walrus.")
    assert first["type"] == "response", first
    restarted = api.post(f"/agents/{agent['id']}/restart")
    assert restarted.status_code == 200, restarted.text
    poll(
        lambda: api.get(f"/agents/{agent['id']}").json()["status"],
        lambda status: status == "ready",
        timeout_s=60,
    )
    second = turn(api, agent["id"], "Which word?")
    assert second["type"] == "response", second
    assert result_of(second)["sessionId"] == result_of(first)["sessionId"]
    last = tenant.requests(main_only=True)[-1]["transcript"]
    assert any("Remember the word walrus." in text for text in last), last
    assert any("Noted: walrus." in text for text in last), last
