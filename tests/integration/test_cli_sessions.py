"""A CLI's session outlives its container: restarts of the service, a new agent of the execution.

(A restart of the agent itself is in test_cli_turns.py, for every CLI.) An agent of a CLI type
keeps its home in an anonymous volume of its own, which no request can mount and which goes
with the agent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import PREFIX, agent_body
from tests.support.cli_profiles import PROFILES, result_of, spawn_fields, turn
from tests.support.engine import Engine
from tests.support.server import ServiceProcess
from tests.support.standin_container import StandinContainer
from tests.support.standins.client import Tenant

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def said(tenant: Tenant, *texts: str) -> bool:
    """Whether the last model call of the tenant carried every one of ``texts``."""
    last = tenant.requests(main_only=True)[-1]["transcript"]
    return all(any(text in part for part in last) for text in texts)


def home_mount(engine: Engine, container: str) -> dict[str, Any]:
    info = engine.inspect(container) or {}
    (mount,) = [m for m in info["Mounts"] if m["Destination"] == "/home/agent"]
    return dict(mount)


@pytest.mark.parametrize("cli", ["claude", "codex"])
def test_cli_session_resumes_after_the_service_restarts(
    start_service: Callable[..., ServiceProcess],
    agent_image: Callable[[str], str],
    standin: StandinContainer,
    tenant: Tenant,
    engine: Engine,
    tmp_path: Path,
    cli: str,
) -> None:
    profile = PROFILES[cli]
    env = {"PARALLAX_STATE_DIR": str(tmp_path / "kept"), "PARALLAX_INSTANCE": f"{PREFIX}-svc"}
    fields = spawn_fields(profile, standin.agent_url, tenant.key, agent_image(cli))
    tenant.answer("Noted: heron.")
    tenant.answer("The word was heron.")
    first_service = start_service(env)
    with httpx.Client(base_url=first_service.url, timeout=60) as client:
        made = client.post("/agents", json=agent_body(**fields))
        assert made.status_code == 201, made.text
        agent = made.json()
    try:
        with httpx.Client(base_url=first_service.url, timeout=60) as client:
            first = turn(client, agent["id"], "Remember the word heron.")
        assert first["type"] == "response", first
        first_service.stop()
        second_service = start_service(env)
        with httpx.Client(base_url=second_service.url, timeout=60) as client:
            second = turn(client, agent["id"], "Which word?")
        assert second["type"] == "response", second
        assert result_of(second)["sessionId"] == result_of(first)["sessionId"]
        assert said(tenant, "Remember the word heron.", "Noted: heron.")
    finally:
        engine.remove_container(agent["containerName"])


@pytest.mark.parametrize("cli", sorted(PROFILES))
def test_cli_session_resumes_in_a_new_agent_of_the_same_execution(
    api: httpx.Client,
    cli_agent: Callable[..., dict[str, Any]],
    tenant: Tenant,
    engine: Engine,
    cli: str,
) -> None:
    execution = f"{PREFIX}-s{uuid.uuid4().hex[:6]}"
    tenant.answer("Noted: otter.")
    tenant.answer("The word was otter.")
    first_agent = cli_agent(PROFILES[cli], executionId=execution)
    first = turn(api, first_agent["id"], "Remember the word otter.")
    assert first["type"] == "response", first
    assert api.delete(f"/agents/{first_agent['id']}").status_code in (200, 204)
    second_agent = cli_agent(PROFILES[cli], executionId=execution)
    assert second_agent["id"] != first_agent["id"]
    second = turn(api, second_agent["id"], "Which word?")
    assert second["type"] == "response", second
    assert result_of(second)["sessionId"] == result_of(first)["sessionId"]
    assert said(tenant, "Remember the word otter.", "Noted: otter.")
    # The execution's volume is removed with the session's clean-up (its name has PREFIX).


def test_a_cli_agent_keeps_its_home_in_a_volume_of_its_own_that_goes_with_it(
    spawn: Callable[..., dict[str, Any]],
    agent_image: Callable[[str], str],
    api: httpx.Client,
    engine: Engine,
    refused: Callable[..., dict[str, Any]],
) -> None:
    agent = spawn(type="claude", image=agent_image("claude"), resources={"memory": "512m"})
    mount = home_mount(engine, agent["containerName"])
    assert mount["Type"] == "volume" and mount["RW"]
    (volume,) = [v for v in engine.volumes() if v["Name"] == mount["Name"]]
    assert volume["Labels"]["parallax.volume.kind"] == "agent-home"
    assert volume["Labels"]["parallax.managed"] == "true"
    # The agent user owns it, as it owned the tmpfs.
    code, owner = engine.exec(agent["containerName"], "stat", "-c", "%u %a", "/home/agent")
    assert (code, owner.strip()) == (0, "1000 700")
    # No request may mount it by its (generated) name.
    refused(403, "VOLUME_FORBIDDEN", volumes=[f"{mount['Name']}:/data"])
    assert api.delete(f"/agents/{agent['id']}").status_code in (200, 204)
    assert not [v for v in engine.volumes() if v["Name"] == mount["Name"]]


def test_an_agent_of_another_type_keeps_the_home_tmpfs(
    spawn: Callable[..., dict[str, Any]], agent_image: Callable[[str], str], engine: Engine
) -> None:
    agent = spawn(image=agent_image("echo"), resources={"memory": "128m"})
    info = engine.inspect(agent["containerName"]) or {}
    assert "/home/agent" in (info["HostConfig"].get("Tmpfs") or {})
    assert not [m for m in info["Mounts"] if m["Destination"] == "/home/agent"]


def test_an_agent_of_a_cli_type_on_a_foreign_image_keeps_the_home_tmpfs(
    spawn: Callable[..., dict[str, Any]], engine: Engine
) -> None:
    # The busybox test image has no parallax.image.user label: its home may not be set up.
    agent = spawn(type="claude")
    info = engine.inspect(agent["containerName"]) or {}
    assert "/home/agent" in (info["HostConfig"].get("Tmpfs") or {})


def test_files_changed_sees_modifications_and_deletions(
    api: httpx.Client,
    cli_agent: Callable[..., dict[str, Any]],
    tenant: Tenant,
    engine: Engine,
) -> None:
    profile = PROFILES["claude"]
    agent = cli_agent(profile)
    code, _ = engine.exec(
        agent["containerName"],
        "sh",
        "-c",
        "mkdir -p /workspace/src && echo a >/workspace/src/keep.txt && echo b >/workspace/old.txt"
        " && echo c >/workspace/edit.txt",
    )
    assert code == 0
    tenant.shell(
        "rm /workspace/old.txt && echo changed >>/workspace/edit.txt"
        " && touch '/workspace/new file'",
        "Done.",
    )
    answer = turn(api, agent["id"], "Tidy up.")
    assert answer["type"] == "response", answer
    assert result_of(answer)["filesChanged"] == [
        {"path": "/workspace/edit.txt", "change": "modified"},
        {"path": "/workspace/new file", "change": "added"},
        {"path": "/workspace/old.txt", "change": "deleted"},
    ]
