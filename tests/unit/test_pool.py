"""The warm pool's pure rules (what fits, what a pooled container looks like, the pool
setting), its claim records, and claims through a fake engine."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from parallax_docker.backends.base import ImageInfo
from parallax_docker.config import PoolSize, Settings, load_settings
from parallax_docker.errors import ConfigError
from parallax_docker.models import SpawnRequest
from parallax_docker.runtime.labels import AgentLabels, container_name
from parallax_docker.runtime.pool import (
    CLAIM_DIR_TARGET,
    MARKER_TARGET,
    POOL,
    POOL_TYPE,
    ClaimStore,
    PoolSlot,
    WarmPool,
    pool_container_spec,
    unfit_reason,
    wait_script,
)
from parallax_docker.runtime.secrets import ENV_FILE_TARGET, ENV_SH_TARGET, SecretStore
from parallax_docker.runtime.service import AgentService
from parallax_docker.runtime.spec import PlannedAgent, plan_agent
from tests.unit.fakes import FakeBackend, as_backend, running_state

GIB = 1024**3
TEST_IMAGE = "parallax-test/agent:latest"

NATIVE = ImageInfo(
    id="sha256:" + "1" * 64,
    tags=("parallax/agent-claude:latest",),
    user="agent",
    healthcheck=("CMD", "/usr/local/bin/parallax-healthcheck"),
    labels={"parallax.image.type": "claude"},
    size=1,
    created=None,
    entrypoint=("/usr/local/bin/parallax-entrypoint",),
    cmd=("/usr/local/bin/parallax-idle",),
    health_interval_s=2.0,
    health_timeout_s=3.0,
    health_retries=3,
    health_start_period_s=30.0,
)
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


# -- what a pooled container looks like ---------------------------------------------------------


def test_a_pooled_container_carries_pool_labels_and_no_agent_identity(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    spec = pool_container_spec(settings.pool[0], FOREIGN, settings, "abc123", tmp_path / "slot")
    assert spec.labels[POOL] == "true" and spec.labels[POOL_TYPE] == "custom"
    assert spec.labels["parallax.instance"] == settings.instance
    assert AgentLabels.decode(spec.labels) is None
    assert spec.name == "parallax-pool-abc123" and spec.aliases == ()


def test_a_pooled_container_is_hardened_like_an_agent(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    spec = pool_container_spec(settings.pool[0], FOREIGN, settings, "abc123", tmp_path / "slot")
    assert spec.read_only_rootfs and spec.cap_drop_all and spec.no_new_privileges and spec.init
    assert spec.memory_bytes == settings.default_memory_bytes
    assert spec.nano_cpus == settings.default_nano_cpus
    assert spec.pids_limit == settings.pids_limit
    assert spec.network == settings.docker_network
    assert "/run/parallax" in spec.tmpfs


def test_a_foreign_image_waits_in_a_shell_wrapper_and_reads_env_sh(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    folder = tmp_path / "slot"
    spec = pool_container_spec(settings.pool[0], FOREIGN, settings, "abc123", folder)
    mounts = {m.target: m for m in spec.mounts}
    assert mounts[ENV_FILE_TARGET].source == str(folder / "env")
    assert mounts[ENV_SH_TARGET].source == str(folder / "env.sh")
    assert mounts[CLAIM_DIR_TARGET].source == str(folder / "claim")
    assert all(mounts[t].read_only for t in (ENV_FILE_TARGET, ENV_SH_TARGET, CLAIM_DIR_TARGET))
    assert spec.entrypoint is not None and spec.entrypoint[:2] == ("/bin/sh", "-c")
    assert spec.entrypoint[2] == wait_script(("/bin/test", "-f", "/tmp/ready"), load_env_sh=True)
    # The image's own command runs once claimed, as "$@" of the wrapper.
    assert spec.command == FOREIGN.cmd
    assert spec.env == {}


def test_a_project_image_loads_its_env_itself_once_claimed(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    spec = pool_container_spec(settings.pool[1], NATIVE, settings, "abc123", tmp_path / "slot")
    assert spec.entrypoint is not None
    assert ENV_SH_TARGET not in spec.entrypoint[2]
    assert spec.command == ("/usr/local/bin/parallax-entrypoint", "/usr/local/bin/parallax-idle")
    assert ENV_SH_TARGET not in {m.target for m in spec.mounts}


def test_the_wait_script_blocks_on_the_fifo_and_announces_after_the_images_check() -> None:
    script = wait_script(("/bin/test", "-f", "/tmp/my ready"), load_env_sh=False)
    assert f"<{CLAIM_DIR_TARGET}/go" in script
    # The check is quoted for the shell, never interpolated raw.
    assert "until /bin/test -f '/tmp/my ready' " in script
    assert f"echo up >{CLAIM_DIR_TARGET}/up" in script
    assert script.endswith('exec "$@"')
    # Restarted after a claim: the marker is there, no waiting.
    assert script.index(f"if [ ! -e {MARKER_TARGET} ]") < script.index("read -r")


def test_docker_health_passes_while_pooled_then_is_the_images(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    spec = pool_container_spec(settings.pool[1], NATIVE, settings, "abc123", tmp_path / "slot")
    assert spec.healthcheck is not None
    assert spec.healthcheck.argv[-1] == "/usr/local/bin/parallax-healthcheck"
    assert MARKER_TARGET in spec.healthcheck.argv[2]
    assert (spec.healthcheck.interval_s, spec.healthcheck.retries) == (2.0, 3)


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


# -- claims through a fake engine ---------------------------------------------------------------


async def _pool(tmp_path: Path, fake: FakeBackend) -> tuple[WarmPool, Settings]:
    settings = _settings(tmp_path, f"custom={TEST_IMAGE}:1")
    fake.images[TEST_IMAGE] = FOREIGN
    claims = ClaimStore(tmp_path / "state" / "claims")
    secrets = SecretStore(settings.secrets_dir)
    pool = WarmPool(settings, as_backend(fake), secrets, claims, engine_up=lambda: True)
    await pool._fill()
    assert pool.idle_count("custom") == 1
    return pool, settings


def _container_side(slot: PoolSlot) -> asyncio.Task[None]:
    """What the pooled container's wrapper does: wait for "go", answer "up"."""
    go = os.open(slot.folder / "claim" / "go", os.O_RDONLY | os.O_NONBLOCK)
    up = os.open(slot.folder / "claim" / "up", os.O_RDWR | os.O_NONBLOCK)

    async def run() -> None:
        try:
            while True:
                try:
                    if os.read(go, 16).startswith(b"go"):
                        break
                except BlockingIOError:
                    pass
                await asyncio.sleep(0.001)
            os.write(up, b"up\n")
            await asyncio.sleep(0.2)
        finally:
            os.close(go)
            os.close(up)

    return asyncio.create_task(run())


async def test_the_slot_directory_holds_the_env_files_and_the_fifos(tmp_path: Path) -> None:
    fake = FakeBackend()
    pool, _ = await _pool(tmp_path, fake)
    [slot] = pool._idle["custom"]
    assert stat.S_ISFIFO(os.lstat(slot.folder / "claim" / "go").st_mode)
    assert stat.S_ISFIFO(os.lstat(slot.folder / "claim" / "up").st_mode)
    assert (slot.folder / "env").read_bytes() == b""
    assert stat.S_IMODE(os.stat(slot.folder).st_mode) == 0o700


async def test_a_claim_sets_limits_name_aliases_and_env(tmp_path: Path) -> None:
    fake = FakeBackend()
    pool, settings = await _pool(tmp_path, fake)
    plan = _plan(settings, env={"TOKEN": "t-1"}, resources={"memory": "96m", "cpu": 0.3})
    slot = pool.take(plan)
    assert slot is not None
    container = _container_side(slot)
    state = await pool.claim(slot, plan)
    await container
    agent_id = plan.labels.id
    assert state.id == slot.container_id
    assert fake.called("update_limits") == [(slot.container_id, 96 * 1024 * 1024, 300_000_000)]
    assert fake.called("rename") == [(slot.container_id, container_name(agent_id))]
    [(_, network, aliases)] = fake.called("reconnect")
    assert network == settings.docker_network
    assert set(aliases) == {"worker", container_name(agent_id), agent_id}
    folder = settings.secrets_dir / agent_id
    assert (folder / "env").read_bytes() == b"TOKEN=t-1\0"
    assert (folder / "env.sh").read_text() == "export TOKEN='t-1'\n"
    assert (folder / "claim" / "ready").exists()
    assert pool.claims.labels(slot.container_id) == plan.labels


async def test_the_env_file_keeps_its_inode_so_the_mounted_file_changes(tmp_path: Path) -> None:
    fake = FakeBackend()
    pool, settings = await _pool(tmp_path, fake)
    plan = _plan(settings, env={"TOKEN": "t-2"})
    slot = pool.take(plan)
    assert slot is not None
    inode = (slot.folder / "env").stat().st_ino
    container = _container_side(slot)
    await pool.claim(slot, plan)
    await container
    assert (settings.secrets_dir / plan.labels.id / "env").stat().st_ino == inode


async def test_a_failed_claim_removes_the_container_and_its_records(tmp_path: Path) -> None:
    fake = FakeBackend()
    pool, settings = await _pool(tmp_path, fake)
    plan = _plan(settings, env={"TOKEN": "t-3"})
    slot = pool.take(plan)
    assert slot is not None

    async def broken(container_id: str, name: str) -> None:
        raise ConfigError("rename refused")

    fake.rename = broken  # type: ignore[method-assign]
    with pytest.raises(ConfigError):
        await pool.claim(slot, plan)
    assert slot.container_id not in fake.containers
    assert pool.claims.containers() == set()
    assert not (settings.secrets_dir / plan.labels.id).exists()


async def test_without_an_announcement_readiness_is_probed_from_outside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeBackend()
    pool, settings = await _pool(tmp_path, fake)
    plan = _plan(settings)
    slot = pool.take(plan)
    assert slot is not None
    # Nothing answers on the FIFO; the fake engine's exec passes the image's check.
    monkeypatch.setattr("parallax_docker.runtime.pool._ANNOUNCE_WAIT_S", 0.05)
    state = await pool.claim(slot, plan)
    assert state.id == slot.container_id
    assert pool.claims.labels(slot.container_id) == plan.labels


async def test_take_counts_a_miss_when_the_pool_is_empty(tmp_path: Path) -> None:
    fake = FakeBackend()
    pool, settings = await _pool(tmp_path, fake)
    assert pool.take(_plan(settings)) is not None
    assert pool.take(_plan(settings)) is None
    assert pool.counters.misses == 1
    assert pool.take(_plan(settings, command=["x"])) is None
    assert pool.counters.misses == 1


async def test_the_service_serves_a_fitting_spawn_from_the_pool(tmp_path: Path) -> None:
    fake = FakeBackend()
    fake.images[TEST_IMAGE] = FOREIGN
    settings = _settings(tmp_path, f"custom={TEST_IMAGE}:1")
    service = AgentService(settings, as_backend(fake))
    service.engine_ready(await fake.ping())
    assert service.pool is not None
    await service.pool._fill()
    [pooled] = list(fake.containers)
    container = _container_side(service.pool._idle["custom"][0])
    handle = await service.spawn(
        SpawnRequest.model_validate({"name": "w", "type": "custom", "image": TEST_IMAGE})
    )
    await container
    # The request asked for the default limits, which the pooled container already has.
    assert fake.called("update_limits") == []
    assert handle.container_id == pooled and handle.status == "ready"
    assert handle.container_name == container_name(handle.id)
    assert [c for c, _ in fake.calls if c == "create"] == ["create"]  # the pool's, no other


async def test_a_claimed_container_is_adopted_as_its_agent_after_a_restart(tmp_path: Path) -> None:
    fake = FakeBackend()
    settings = _settings(tmp_path, f"custom={TEST_IMAGE}:1")
    labels = _labels("agent-9")
    ClaimStore(settings.state_dir / "pool" / settings.instance).put("c9", labels, complete=True)
    fake.containers["c9"] = running_state("c9", {POOL: "true", "parallax.managed": "true"})
    service = AgentService(settings, as_backend(fake))
    service.adopt(await fake.list({}))
    handle = service.get("agent-9")
    assert (handle.name, handle.type, handle.role) == ("worker", "custom", "reviewer")
    assert handle.container_id == "c9"
    assert service.agent_of_container("c9") == "agent-9"
