"""A claude thread, for real: the project's claude image answering from the stand-in Anthropic
endpoint (tests/support/standins), driven through /api/threads as the control plane does.

The objective is the first turn: the stand-in answers it with a tool call (claude runs Bash in
/workspace), then text ending with a ``CONFIDENCE`` line. The control plane then sees
``thread_ready``, sends the next task and takes the next ``thread_turn_complete``. A second
thread under the ``standard`` preset shows the preset held by claude itself: the same tool call
is denied (``thread_blocked``) and nothing is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.integration.conftest import PREFIX
from tests.support.cli_profiles import PROFILES
from tests.support.engine import Engine
from tests.support.server import ServiceProcess
from tests.support.standin_container import StandinContainer
from tests.support.standins.client import Tenant
from tests.support.threads import ThreadFeed

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLAUDE = PROFILES["claude"]
TURN_S = 180


@pytest.fixture
def feed(service: ServiceProcess) -> Iterator[ThreadFeed]:
    with ThreadFeed(service.url) as connected:
        yield connected


@pytest.fixture
def claude_thread(
    api: httpx.Client,
    engine: Engine,
    standin: StandinContainer,
    tenant: Tenant,
    agent_image: Callable[[str], str],
) -> Iterator[Callable[..., str]]:
    """Spawn a claude thread whose key is this test's stand-in tenant; removed afterwards."""
    made: list[str] = []

    def spawn(objective: str, **fields: Any) -> str:
        execution_id = f"{PREFIX}-{uuid.uuid4().hex[:8]}"
        body: dict[str, Any] = {
            "id": f"{execution_id}-thread-0",
            "executionId": execution_id,
            "name": "Claude 1",
            "agentType": "claude",
            "objective": objective,
            "role": "engineer",
            "image": agent_image("claude"),
            # The key and the base URL reach claude as the thread's env (its secrets).
            "env": {**CLAUDE.env(standin.agent_url), CLAUDE.key_name: tenant.key},
            "resources": {"memory": "1g", "cpu": 1.0},
            **fields,
        }
        response = api.post("/api/threads", json=body)
        assert response.status_code == 201, response.text
        made.append(body["id"])
        return str(body["id"])

    yield spawn
    for thread_id in made:
        engine.remove_container(f"parallax-{thread_id}")


def test_a_claude_thread_answers_its_objective_from_the_stand_in_then_a_second_turn(
    api: httpx.Client,
    feed: ThreadFeed,
    tenant: Tenant,
    engine: Engine,
    claude_thread: Callable[..., str],
) -> None:
    tenant.shell(
        "printf 'made by claude\\n' > /workspace/claude-was-here.txt",
        then="I wrote the file.\nCONFIDENCE: 0.85",
        input_tokens=120,
        output_tokens=30,
    )
    tenant.answer("Step two is done.\nCONFIDENCE: 0.6", input_tokens=200, output_tokens=12)
    thread_id = claude_thread("Write a file that says you were here.")
    events = feed.wait_for(thread_id, lambda t: "thread_ready" in t, timeout_s=TURN_S)
    types = [event["type"] for event in events]
    assert types[0] == "thread_started"
    assert types[-3:] == ["thread_output", "thread_turn_complete", "thread_ready"]
    tool = feed.first(thread_id, "thread_tool_running")["data"]["info"]
    assert tool["tool"] == "Bash" and "claude-was-here.txt" in str(tool["input"])
    complete = feed.first(thread_id, "thread_turn_complete")["data"]
    assert complete["output"] == "I wrote the file.\nCONFIDENCE: 0.85"
    assert complete["confidence"] == 0.85 and complete["objective"] is True
    assert complete["usage"]["inputTokens"] >= 120 and complete["usage"]["outputTokens"] >= 30
    code, text = engine.exec(f"parallax-{thread_id}", "cat", "/workspace/claude-was-here.txt")
    assert (code, text) == (0, "made by claude\n")
    first_call = tenant.requests(main_only=True)[0]
    assert any("you were here" in text for text in first_call["transcript"])

    # The control plane's next task: sent after thread_ready, answered by its own turn.
    before = len(events)
    sent = api.post(f"/api/threads/{thread_id}/send", json={"message": "Now do step two."})
    assert sent.status_code == 200, sent.text
    feed.wait_for(thread_id, lambda t: t.count("thread_turn_complete") == 2, timeout_s=TURN_S)
    second = feed.first(thread_id, "thread_turn_complete", after=before)["data"]
    assert second["output"] == "Step two is done.\nCONFIDENCE: 0.6"
    assert second["confidence"] == 0.6 and "objective" not in second
    assert feed.types(thread_id).count("thread_ready") == 1
    last_call = tenant.requests(main_only=True)[-1]
    assert any("step two" in text for text in last_call["transcript"])
    # The session went on: the second call carries the first exchange.
    assert any("you were here" in text for text in last_call["transcript"])
    assert api.delete(f"/api/threads/{thread_id}").status_code == 204
    stopped = feed.wait_for(thread_id, lambda t: "thread_stopped" in t)[-1]
    assert stopped["data"]["reason"] == "deleted"


def test_the_standard_preset_makes_claude_deny_a_shell_call_it_would_have_to_ask_for(
    feed: ThreadFeed,
    tenant: Tenant,
    engine: Engine,
    claude_thread: Callable[..., str],
) -> None:
    tenant.shell(
        "printf 'should not exist\\n' > /workspace/denied.txt",
        then="I was not allowed to run it.",
    )
    thread_id = claude_thread("Write a file.", approvalPreset="standard")
    events = feed.wait_for(thread_id, lambda t: "thread_ready" in t, timeout_s=TURN_S)
    blocked = feed.first(thread_id, "thread_blocked")["data"]
    assert blocked["autoResponded"] is True and blocked["promptInfo"]["tool"] == "Bash"
    types = [event["type"] for event in events]
    assert types.index("thread_blocked") < types.index("thread_turn_complete")
    assert engine.exec(f"parallax-{thread_id}", "test", "-e", "/workspace/denied.txt")[0] == 1
    assert feed.first(thread_id, "thread_turn_complete")["data"]["output"] == (
        "I was not allowed to run it."
    )
