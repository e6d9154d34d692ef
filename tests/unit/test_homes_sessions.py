"""Where sessions live: a CLI agent's own home volume; an execution's session for a new agent."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from parallax_docker.backends.base import ImageInfo
from parallax_docker.config import Settings, load_settings
from parallax_docker.models import SpawnRequest
from parallax_docker.run_as import NONROOT
from parallax_docker.runtime.drivers.wrapper import TURN_SCRIPT
from parallax_docker.runtime.homes import AGENT_HOME_KIND, VOLUME_KIND
from parallax_docker.runtime.labels import MANAGED
from parallax_docker.runtime.pool.fit import pool_spec
from parallax_docker.runtime.sessions import Sessions, execution_key
from parallax_docker.runtime.spec import container_spec, plan_agent
from parallax_docker.runtime.store import Store
from parallax_docker.runtime.workspace_changes import SNAPSHOT
from parallax_docker.volume_owner import runtime_owned
from tests.unit.fakes import image

PROJECT = {"parallax.image.type": "claude", "parallax.image.user": "agent"}


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(environ={})


def spec_for(settings: Settings, labels: dict[str, str] = PROJECT, **fields: Any) -> Any:
    body: dict[str, Any] = {"name": "coder", "type": "claude", **fields}
    planned = plan_agent(
        SpawnRequest.model_validate(body), settings, host_memory=1 << 34, host_cpus=4
    )
    project: ImageInfo = dataclasses.replace(image(), labels=labels)
    return container_spec(planned, project, settings)


def home_mounts(spec: Any) -> list[Any]:
    return [m for m in spec.mounts if m.target == "/home/agent"]


def test_a_cli_agent_on_a_project_image_gets_an_anonymous_home_volume(settings: Settings) -> None:
    spec = spec_for(settings)
    (home,) = home_mounts(spec)
    assert (home.kind, home.source, home.read_only) == ("volume", "", False)
    assert home.volume_labels[VOLUME_KIND] == AGENT_HOME_KIND
    assert home.volume_labels[MANAGED] == "true"
    assert "/home/agent" not in spec.tmpfs
    assert "/workspace" in spec.tmpfs


@pytest.mark.parametrize(
    ("labels", "fields"),
    [
        ({"parallax.image.type": "claude"}, {}),  # not a project image: its home may not exist
        (PROJECT, {"type": "custom"}),  # no CLI sessions to keep
        (PROJECT, {"volumes": ["mine:/home/agent"]}),  # the request's own home
    ],
)
def test_other_agents_keep_the_home_tmpfs_or_their_own_mount(
    settings: Settings, labels: dict[str, str], fields: dict[str, Any]
) -> None:
    spec = spec_for(settings, labels, **fields)
    assert all(m.source for m in home_mounts(spec))
    if not home_mounts(spec):
        assert "/home/agent" in spec.tmpfs


def test_an_execution_agent_keeps_the_executions_shared_home(settings: Settings) -> None:
    (home,) = home_mounts(spec_for(settings, executionId="run-1"))
    assert home.source.startswith("parallax-exec-") and home.source.endswith("run-1")


def test_an_agents_home_volume_is_runtime_owned_and_a_requests_volume_is_not(
    settings: Settings,
) -> None:
    project: ImageInfo = dataclasses.replace(image(), labels=PROJECT)
    request = SpawnRequest.model_validate({"name": "n", "type": "claude"})
    plan = plan_agent(request, settings, host_memory=1 << 40, host_cpus=8)
    (home,) = home_mounts(container_spec(plan, project, settings))
    assert runtime_owned(dict(home.volume_labels))
    assert dict(home.volume_labels)[VOLUME_KIND] == AGENT_HOME_KIND
    assert not runtime_owned({MANAGED: "true", "parallax.execution.id": "x"})


def test_the_turn_wrapper_lists_the_workspace_before_the_cli_starts() -> None:
    assert SNAPSHOT in TURN_SCRIPT
    assert TURN_SCRIPT.index(SNAPSHOT) < TURN_SCRIPT.index('exec "$@"')


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[Sessions]:
    store = Store.in_dir(tmp_path / "state")
    await store.open()
    yield Sessions(store)
    await store.close()


async def test_an_agent_resumes_its_own_session_first(sessions: Sessions) -> None:
    await sessions.keep("a1", "run", "claude", "s-1", 1.0)
    await sessions.keep("a2", "run", "claude", "s-2", 2.0)
    assert await sessions.find("a1", "run", "claude") == "s-1"


async def test_a_new_agent_of_the_execution_resumes_the_executions_latest(
    sessions: Sessions,
) -> None:
    await sessions.keep("a1", "run", "claude", "s-1", 1.0)
    assert await sessions.find("a-new", "run", "claude") == "s-1"
    assert await sessions.find("a-new", "run", "codex") is None
    assert await sessions.find("a-new", "other", "claude") is None
    assert await sessions.find("a-new", None, "claude") is None


async def test_forgetting_a_session_forgets_it_for_the_execution_too(sessions: Sessions) -> None:
    await sessions.keep("a1", "run", "claude", "s-1", 1.0)
    await sessions.forget("a1", "run", "claude", 2.0)
    assert await sessions.find("a1", "run", "claude") is None
    assert await sessions.find("a2", "run", "claude") is None


def test_execution_keys_cannot_be_agent_ids() -> None:
    assert ":" in execution_key("run", "claude")


def test_a_pooled_container_of_a_cli_type_has_its_own_home_volume() -> None:
    settings = load_settings(environ={"PARALLAX_POOL": "claude:1"})
    project: ImageInfo = dataclasses.replace(image(), labels=PROJECT)
    spec = pool_spec(settings.pool[0], project, settings, "abc123", NONROOT, beating=True)
    (home,) = home_mounts(spec)
    assert (home.kind, home.source) == ("volume", "")
    assert "/home/agent" not in spec.tmpfs
