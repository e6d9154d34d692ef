"""The warm pool: its setting, which spawns fit, what a pooled container is, its claim records,
and its policy (fill, take, claim, clean up) on the fake platform. The platform's own mechanics
(the held process, FIFOs, env files) are tested with the Docker deployment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from parallax_docker.backends.base import ImageInfo
from parallax_docker.config import Settings, load_settings
from parallax_docker.errors import ConfigError, EngineError, HealthCheckFailedError
from parallax_docker.models import SpawnRequest
from parallax_docker.pool_config import PoolSize
from parallax_docker.run_as import NONROOT
from parallax_docker.runtime.labels import AgentLabels
from parallax_docker.runtime.pool.claims import ClaimStore
from parallax_docker.runtime.pool.fit import POOL, POOL_TYPE, pool_spec, unfit_reason
from parallax_docker.runtime.spec import PlannedAgent, plan_agent
from tests.unit.fakes import exited_state
from tests.unit.harness import harness, request

GIB = 1024**3
TEST_IMAGE = "parallax-test/agent:latest"

FOREIGN = ImageInfo(
    id="sha256:" + "2" * 64,
    tags=(TEST_IMAGE,),
    user="agent",
    healthcheck=("CMD", "/bin/test", "-f", "/tmp/ready"),
    labels={},
    size=1,
    created=None,
    entrypoint=None,
    cmd=("/bin/sh", "-c", "touch /tmp/ready; exec sleep 1000"),
)


def _settings(tmp_path: Path, pool: str = f"custom={TEST_IMAGE}:2,claude:1") -> Settings:
    return load_settings(
        environ={
            "PARALLAX_POOL": pool,
            "PARALLAX_STATE_DIR": str(tmp_path / "state"),
            "PARALLAX_SECRETS_DIR": str(tmp_path / "secrets"),
        }
    )


def _plan(settings: Settings, **fields: Any) -> PlannedAgent:
    body: dict[str, Any] = {"name": "worker", "type": "custom", "image": TEST_IMAGE}
    body.update(fields)
    request = SpawnRequest.model_validate(body)
    return plan_agent(request, settings, host_memory=16 * GIB, host_cpus=8)


# -- the setting --------------------------------------------------------------------------------


def test_pool_setting_reads_type_image_and_count() -> None:
    settings = load_settings(environ={"PARALLAX_POOL": "custom=my/agent:1.0:3, claude:2"})
    assert settings.pool == (
        PoolSize(type="custom", size=3, image="my/agent:1.0"),
        PoolSize(type="claude", size=2, image=None),
    )


@pytest.mark.parametrize(
    "value", ["robot:2", "custom", "custom:-1", "custom:two", "custom:1,custom:2"]
)
def test_pool_setting_refuses_what_does_not_parse(value: str) -> None:
    with pytest.raises(ConfigError, match="PARALLAX_POOL"):
        load_settings(environ={"PARALLAX_POOL": value})


# -- what fits ----------------------------------------------------------------------------------


def test_a_request_with_default_settings_fits(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    size = settings.pool[0]
    plan = _plan(
        settings,
        env={"TOKEN": "x"},
        resources={"memory": "1g", "cpu": 2},
        role="reviewer",
        capabilities=["code"],
        autoRestart=True,
        idleTimeout=60,
    )
    assert unfit_reason(plan, settings, size) is None


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"image": "other/image:1"}, "another image"),
        ({"volumes": ["cache:/data"]}, "volumes"),
        ({"network": "none"}, "another network"),
        ({"network": "internal"}, "another network"),
        ({"network": "team-a"}, "another network"),
        ({"command": ["sleep", "1"]}, "a command"),
        ({"workdir": "/workspace/x"}, "a workdir"),
        ({"labels": {"team": "a"}}, "labels"),
        ({"executionId": "exec-1"}, "volumes"),
    ],
)
def test_a_request_needing_what_the_pool_lacks_starts_cold(
    tmp_path: Path, fields: dict[str, Any], reason: str
) -> None:
    settings = _settings(tmp_path)
    assert unfit_reason(_plan(settings, **fields), settings, settings.pool[0]) == reason


def test_a_type_without_a_pool_starts_cold(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    plan = _plan(settings, type="codex", image=None)
    assert unfit_reason(plan, settings, None) == "no pool for this type"


def test_the_pool_image_of_a_type_defaults_to_the_types_image(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    claude = settings.pool[1]
    assert unfit_reason(_plan(settings, type="claude", image=None), settings, claude) is None
    other = _plan(settings, type="claude", image="parallax/agent-claude:dev")
    assert unfit_reason(other, settings, claude) == "another image"


# -- what a pooled container is ----------------------------------------------------------------


def test_a_pooled_container_carries_pool_labels_and_no_agent_identity(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    spec = pool_spec(settings.pool[0], FOREIGN, settings, "abc123", NONROOT, beating=False)
    assert spec.labels[POOL] == "true" and spec.labels[POOL_TYPE] == "custom"
    assert spec.labels["parallax.instance"] == settings.instance
    assert AgentLabels.decode(spec.labels) is None
    assert spec.name == "parallax-pool-abc123" and spec.aliases == ()


def test_a_pooled_container_is_hardened_like_an_agent(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    spec = pool_spec(settings.pool[0], FOREIGN, settings, "abc123", NONROOT, beating=False)
    assert spec.read_only_rootfs and spec.cap_drop_all and spec.no_new_privileges and spec.init
    assert spec.memory_bytes == settings.default_memory_bytes
    assert spec.nano_cpus == settings.default_nano_cpus
    assert spec.pids_limit == settings.pids_limit
    assert spec.network == settings.docker_network
    assert "/run/parallax" in spec.tmpfs


# -- claim records ------------------------------------------------------------------------------


def _labels(agent_id: str = "agent-1") -> AgentLabels:
    return AgentLabels(
        id=agent_id,
        name="worker",
        type="custom",
        image=TEST_IMAGE,
        network="parallax-agents",
        memory_bytes=64 * 1024 * 1024,
        nano_cpus=250_000_000,
        pids_limit=512,
        created_at="2026-01-01T00:00:00.000+00:00",
        role="reviewer",
    )


def test_a_complete_claim_is_read_back_after_a_restart(tmp_path: Path) -> None:
    store = ClaimStore(tmp_path / "claims")
    store.put("c1", _labels(), complete=False)
    assert store.labels("c1") is None and store.pending("c1")
    store.put("c1", _labels(), complete=True)
    again = ClaimStore(tmp_path / "claims")
    again.load()
    assert again.labels("c1") == _labels()
    assert again.container_of("agent-1") == "c1"


def test_an_incomplete_claim_gives_no_identity_after_a_restart(tmp_path: Path) -> None:
    store = ClaimStore(tmp_path / "claims")
    store.put("c1", _labels(), complete=False)
    again = ClaimStore(tmp_path / "claims")
    again.load()
    assert again.labels("c1") is None and again.pending("c1")


def test_a_damaged_claim_record_is_ignored(tmp_path: Path) -> None:
    folder = tmp_path / "claims"
    folder.mkdir()
    (folder / "c1.json").write_text("{not json")
    (folder / "c2.json").write_text(json.dumps({"container": "c2", "labels": {}}))
    store = ClaimStore(folder)
    store.load()
    assert store.containers() == set()


def test_dropping_a_claim_removes_its_file(tmp_path: Path) -> None:
    store = ClaimStore(tmp_path / "claims")
    store.put("c1", _labels(), complete=True)
    store.drop("c1")
    assert store.labels("c1") is None and list((tmp_path / "claims").iterdir()) == []


# -- the pool's policy on the fake platform -----------------------------------------------------


async def test_a_pool_fills_to_its_size_and_counts_a_miss_when_empty(tmp_path: Path) -> None:
    async with harness(tmp_path, PARALLAX_POOL="claude:2") as h:
        pool = h.runtime.pool
        assert pool is not None
        await pool._fill()
        assert pool.idle_count("claude") == 2 and pool.counters.filled == 2
        plan = plan_agent(request(id="a1"), h.runtime.settings, host_memory=GIB * 64, host_cpus=8)
        assert pool.take(plan) is not None and pool.take(plan) is not None
        assert pool.take(plan) is None and pool.counters.misses == 1


async def test_a_claimed_container_becomes_the_agent_and_its_claim_is_recorded(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, PARALLAX_POOL="claude:1", DEFAULT_MEMORY="256m") as h:
        pool = h.runtime.pool
        assert pool is not None
        await pool._fill()
        handle = await h.runtime.spawner.spawn(request(id="a1", resources={"memory": "96m"}))
        container_id = handle.container_id
        assert container_id is not None
        labels = h.runtime.claims.labels(container_id)
        assert labels is not None and labels.id == "a1"
        assert h.fake.containers[container_id].memory_bytes == 96 * 1024 * 1024
        assert pool.counters.claims == 1 and pool.idle_count() == 0


async def test_without_an_announcement_readiness_is_probed_from_outside(tmp_path: Path) -> None:
    async with harness(tmp_path, PARALLAX_POOL="claude:1") as h:
        pool = h.runtime.pool
        assert pool is not None
        h.deployment.fake_warm.announce = False
        await pool._fill()
        await h.runtime.spawner.spawn(request(id="a1"))
        assert h.fake.called("get")  # read from outside: the wait for readiness
        assert pool.counters.claims == 1


async def test_a_claim_whose_agent_exits_is_discarded_with_its_record(tmp_path: Path) -> None:
    async with harness(tmp_path, PARALLAX_POOL="claude:1") as h:
        pool = h.runtime.pool
        assert pool is not None
        await pool._fill()
        plan = plan_agent(request(id="a1"), h.runtime.settings, host_memory=GIB * 64, host_cpus=8)
        slot = pool.take(plan)
        assert slot is not None
        h.fake.containers[slot.container_id] = exited_state(h.fake.containers[slot.container_id], 1)
        with pytest.raises(HealthCheckFailedError):
            await pool.claim(slot, plan, on_started=lambda: None)
        assert h.deployment.fake_warm.discarded == [slot.container_id]
        assert h.runtime.claims.containers() == set() and pool.counters.failures == 1


async def test_a_failing_platform_claim_is_discarded_too(tmp_path: Path) -> None:
    async with harness(tmp_path, PARALLAX_POOL="claude:1") as h:
        pool = h.runtime.pool
        assert pool is not None
        await pool._fill()
        h.deployment.fake_warm.claim_error = EngineError("rename refused")
        plan = plan_agent(request(id="a1"), h.runtime.settings, host_memory=GIB * 64, host_cpus=8)
        slot = pool.take(plan)
        assert slot is not None
        with pytest.raises(EngineError):
            await pool.claim(slot, plan, on_started=lambda: None)
        assert h.deployment.fake_warm.discarded == [slot.container_id]


async def test_a_claimed_container_is_adopted_as_its_agent_after_a_restart(tmp_path: Path) -> None:
    async with harness(tmp_path, PARALLAX_POOL="claude:1") as h:
        assert h.runtime.pool is not None
        await h.runtime.pool._fill()
        handle = await h.runtime.spawner.spawn(request(id="a1"))
        containers = dict(h.fake.containers)
    async with harness(tmp_path, ready=False) as again:
        again.fake.containers.update(containers)
        again.sync()
        record = again.runtime.registry.get("a1")
        assert record.container_id == handle.container_id


async def test_maintenance_removes_what_an_earlier_run_left_in_the_pool(tmp_path: Path) -> None:
    async with harness(tmp_path, PARALLAX_POOL="claude:1") as h:
        assert h.runtime.pool is not None
        await h.runtime.pool._fill()
        left = dict(h.fake.containers)
    async with harness(tmp_path, PARALLAX_POOL="claude:1") as again:
        pool = again.runtime.pool
        assert pool is not None
        again.fake.containers.update(left)
        removed = await pool.maintain()
        assert len(removed) == 1 and again.fake.containers == {}
