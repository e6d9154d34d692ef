"""``GET /agents/{id}/diff`` after real turns: a git workspace, and a plain one.

The agent is the echo image with ``PARALLAX_CLI_BIN=sh``: each turn runs the message as a
shell script in the agent, as a command-line agent would edit, delete and commit files.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.conftest import PREFIX
from tests.integration.test_files import put
from tests.support.engine import Engine

GIT_ENV = (
    "export GIT_AUTHOR_NAME=agent GIT_AUTHOR_EMAIL=agent@example.invalid "
    "GIT_COMMITTER_NAME=agent GIT_COMMITTER_EMAIL=agent@example.invalid; set -e; "
)


@pytest.fixture
def scripted(
    spawn: Callable[..., dict[str, Any]], agent_image: Callable[[str], str]
) -> Callable[..., dict[str, Any]]:
    def make(**fields: Any) -> dict[str, Any]:
        return spawn(
            image=agent_image("echo"),
            env={"PARALLAX_CLI_BIN": "sh"},
            resources={"memory": "256m", "cpu": 0.5},
            **fields,
        )

    return make


def turn(api: httpx.Client, agent_id: str, script: str) -> str:
    response = api.post(
        f"/agents/{agent_id}/send",
        json={"message": script, "expectResponse": True, "timeout": 60000},
    )
    assert response.status_code == 200, response.text
    answer = response.json()["response"]
    assert answer["type"] == "response", answer
    return str(answer["content"])


def diff(api: httpx.Client, agent_id: str) -> dict[str, Any]:
    response = api.get(f"/agents/{agent_id}/diff")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_git_workspace_diff_shows_the_turns_commits_and_work_tree_changes(
    api: httpx.Client, scripted: Callable[..., dict[str, Any]], engine: Engine
) -> None:
    volume = f"{PREFIX}-diff-{uuid.uuid4().hex[:6]}"
    # A first agent leaves a repository with one commit on the volume.
    first = scripted(volumes=[f"{volume}:/workspace"])
    turn(
        api,
        first["id"],
        GIT_ENV + "git init -q -b main; printf 'one\\ntwo\\nthree\\n' > kept.txt; "
        "echo bye > doomed.txt; echo same > same.txt; git add -A; git commit -qm initial",
    )
    assert api.delete(f"/agents/{first['id']}").status_code == 204
    # The agent under test starts on it: the HEAD at spawn is the initial commit.
    agent = scripted(volumes=[f"{volume}:/workspace"])
    spawned_head = turn(api, agent["id"], "git rev-parse HEAD").strip()
    assert diff(api, agent["id"])["files"] == []
    turn(
        api,
        agent["id"],
        GIT_ENV + "printf 'one\\n2\\nthree\\n' > kept.txt; git commit -qam 'change two'; "
        "rm doomed.txt; echo fresh > untracked.txt; mkdir -p src; echo 'x = 1' > src/app.py",
    )
    body = diff(api, agent["id"])
    assert body["mode"] == "git"
    assert body["root"] == "/workspace"
    assert body["since"]["head"] == spawned_head
    assert [c["subject"] for c in body["commits"]] == ["change two"]
    assert body["head"] == body["commits"][0]["sha"] != spawned_head
    changes = {f["path"]: f["change"] for f in body["files"]}
    assert changes == {
        "kept.txt": "modified",
        "doomed.txt": "deleted",
        "untracked.txt": "added",
        "src/app.py": "added",
    }
    text = body["diff"]
    assert "-two\n+2\n" in text
    assert "+fresh" in text and "+x = 1" in text and "-bye" in text
    assert "same.txt" not in text
    assert body["truncated"] is False
    # Nothing the diff did is seen by git in the agent: its index is untouched.
    status = turn(api, agent["id"], "git status --porcelain")
    assert "A  untracked.txt" not in status and "?? untracked.txt" in status


def test_plain_workspace_diff_lists_added_modified_and_removed_files(
    api: httpx.Client, scripted: Callable[..., dict[str, Any]]
) -> None:
    volume = f"{PREFIX}-plain-{uuid.uuid4().hex[:6]}"
    first = scripted(volumes=[f"{volume}:/workspace"])
    turn(api, first["id"], "set -e; echo k > keep.txt; echo g > gone.txt; echo e > edit.txt")
    assert api.delete(f"/agents/{first['id']}").status_code == 204
    agent = scripted(volumes=[f"{volume}:/workspace"])
    body = diff(api, agent["id"])
    assert (body["mode"], body["files"], body["commits"]) == ("files", [], [])
    assert "head" not in body["since"] and body["since"]["takenAt"] > 0
    turn(
        api,
        agent["id"],
        "set -e; rm gone.txt; echo E > edit.txt; mkdir -p out; echo result > out/r.txt",
    )
    assert put(api, agent["id"], "uploaded.txt", b"up").status_code == 200
    body = diff(api, agent["id"])
    assert body["files"] == [
        {"path": "edit.txt", "change": "modified", "size": 2},
        {"path": "gone.txt", "change": "deleted"},
        {"path": "out/r.txt", "change": "added", "size": 7},
        {"path": "uploaded.txt", "change": "added", "size": 2},
    ]


def test_diff_after_a_service_restart_still_compares_with_the_spawn(
    start_service: Callable[..., Any],
    agent_image: Callable[[str], str],
    engine: Engine,
    tmp_path: Any,
) -> None:
    from tests.integration.conftest import agent_body

    env = {"PARALLAX_STATE_DIR": str(tmp_path / "state")}
    service = start_service(env)
    with httpx.Client(base_url=service.url, timeout=120) as client:
        made = client.post(
            "/agents",
            json=agent_body(
                image=agent_image("echo"),
                env={"PARALLAX_CLI_BIN": "sh"},
                resources={"memory": "128m"},
            ),
        )
        assert made.status_code == 201, made.text
        agent = made.json()
    try:
        # The snapshot at spawn is kept on disk; the agent changes files while the service
        # is away, and the restarted service compares against the spawn's snapshot.
        code, _ = engine.exec(
            agent["containerName"],
            "sh",
            "-c",
            "echo a > /workspace/a.txt",
            user="agent",
        )
        assert code == 0
        service.stop()
        service.start()
        with httpx.Client(base_url=service.url, timeout=120) as client:
            body = diff(client, agent["id"])
        assert body["since"] is not None
        assert body["files"] == [{"path": "a.txt", "change": "added", "size": 2}]
    finally:
        engine.remove_container(agent["containerName"])


def test_a_workspace_on_its_tmpfs_starts_empty_and_shows_what_the_agent_made(
    api: httpx.Client, scripted: Callable[..., dict[str, Any]], engine: Engine
) -> None:
    # No volume at /workspace: the base is the empty tmpfs, known without an exec at spawn.
    agent = scripted()
    body = diff(api, agent["id"])
    assert (body["mode"], body["files"]) == ("files", [])
    assert body["since"]["takenAt"] > 0
    turn(api, agent["id"], "set -e; mkdir -p out; echo result > out/r.txt; echo n > notes.txt")
    assert diff(api, agent["id"])["files"] == [
        {"path": "notes.txt", "change": "added", "size": 2},
        {"path": "out/r.txt", "change": "added", "size": 7},
    ]
    # A repository made after the spawn is compared with the empty tree.
    turn(api, agent["id"], GIT_ENV + "git init -q . && git add -A && git commit -qm first")
    body = diff(api, agent["id"])
    assert body["mode"] == "git"
    assert {f["path"] for f in body["files"]} == {"notes.txt", "out/r.txt"}
    assert [c["subject"] for c in body["commits"]] == ["first"]
