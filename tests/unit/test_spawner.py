"""Spawn on the fake platform: the cold path, the pooled path, failures undone, retries joined."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from parallax_docker.errors import ConflictError, EngineError, SocketError
from parallax_docker.models import AgentStatus
from tests.unit.harness import harness, request


async def test_a_cold_spawn_creates_starts_and_answers_ready(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        handle = await h.runtime.spawner.spawn(request(id="a1", env={"KEY": "v"}))
        assert handle.status == AgentStatus.READY
        assert h.container_of("a1").running
        assert h.names() == ["agent_started", "agent_ready"]
        assert h.deployment.fake_secrets.delivered == {"a1": {"KEY": "v"}}
        assert h.runtime.journal.orphans() == [] and not h.runtime.journal.owned("spawn", "a1")


async def test_a_failed_spawn_leaves_nothing_and_frees_the_name(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        h.fake.fail["start"] = EngineError("no")
        with pytest.raises(EngineError):
            await h.runtime.spawner.spawn(request(id="a1", env={"KEY": "v"}))
        assert h.fake.containers == {} and h.runtime.registry.find("a1") is None
        assert "a1" in h.deployment.fake_secrets.removed
        assert list(h.runtime.journal.folder.glob("*.json")) == []
        del h.fake.fail["start"]
        handle = await h.runtime.spawner.spawn(request(id="a1"))
        assert handle.status == AgentStatus.READY


async def test_a_spawn_whose_clean_up_fails_stays_reserved_until_recovery_undoes_it(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        h.fake.fail["start"] = SocketError("engine gone")
        h.fake.fail["remove"] = SocketError("engine gone")
        with pytest.raises(SocketError):
            await h.runtime.spawner.spawn(request(id="a1"))
        record = h.runtime.registry.get("a1")
        assert record.in_operation and not record.settled.is_set()
        (orphan,) = h.runtime.journal.orphans()
        assert orphan.data["undo"] is True
        h.fake.fail.clear()
        h.drain()
        h.sync()
        await h.runtime.recovery.wait()
        assert h.runtime.registry.find("a1") is None and h.fake.containers == {}
        stopped = [e for e in h.drain() if e.event == "agent_stopped"]
        assert stopped[0].data["reason"] == "spawn_interrupted"
        assert h.runtime.journal.orphans() == []


async def test_a_retried_spawn_with_the_same_id_and_body_joins_the_first(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        gate = asyncio.Event()
        h.fake.hold["start"] = gate
        first = asyncio.create_task(h.runtime.spawner.spawn(request(id="a1")))
        second = asyncio.create_task(h.runtime.spawner.spawn(request(id="a1")))
        await asyncio.sleep(0.01)
        gate.set()
        one, two = await asyncio.gather(first, second)
        assert one.container_id == two.container_id and len(h.fake.called("create")) == 1
        with pytest.raises(ConflictError):
            await h.runtime.spawner.spawn(request(id="a1", role="other"))


async def test_a_retry_after_the_first_spawn_failed_spawns_afresh(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        gate = asyncio.Event()
        h.fake.hold["start"] = gate
        h.fake.fail_once["start"] = EngineError("no")
        first = asyncio.create_task(h.runtime.spawner.spawn(request(id="a1")))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(h.runtime.spawner.spawn(request(id="a1")))
        await asyncio.sleep(0.01)
        gate.set()
        with pytest.raises(EngineError):
            await first
        assert (await second).status == AgentStatus.READY


async def test_a_fitting_spawn_claims_a_pooled_container(tmp_path: Path) -> None:
    async with harness(tmp_path, PARALLAX_POOL="claude:1") as h:
        assert h.runtime.pool is not None
        await h.runtime.pool._fill()
        assert h.runtime.pool.idle_count("claude") == 1
        handle = await h.runtime.spawner.spawn(request(id="a1", env={"KEY": "v"}))
        (claimed_id, claim) = h.deployment.fake_warm.claimed[0]
        assert handle.container_id == claimed_id and claim.name == "parallax-a1"
        assert claim.env == {"KEY": "v"} and "a1" in claim.aliases
        assert h.runtime.claims.labels(claimed_id) is not None
        assert h.names() == ["agent_started", "agent_ready"]
        assert h.runtime.journal.orphans() == []


async def test_a_failed_claim_discards_the_container_and_starts_cold(tmp_path: Path) -> None:
    async with harness(tmp_path, PARALLAX_POOL="claude:1") as h:
        assert h.runtime.pool is not None
        await h.runtime.pool._fill()
        h.deployment.fake_warm.claim_error = EngineError("rename failed")
        handle = await h.runtime.spawner.spawn(request(id="a1"))
        assert handle.status == AgentStatus.READY
        assert len(h.deployment.fake_warm.discarded) == 1
        assert handle.container_id not in h.deployment.fake_warm.discarded


async def test_an_images_named_user_is_looked_up_once(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.runtime.spawner.spawn(request(id="a1"))
        await h.runtime.spawner.spawn(request(id="a2"))
        assert [path for _, path in h.fake.called("read_file")] == ["/etc/passwd", "/etc/group"]
        assert len(h.fake.called("create")) == 2


async def test_a_named_user_that_is_root_runs_unprivileged_from_the_next_spawn_on(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        h.fake.files["/etc/passwd"] = b"agent:x:0:0::/root:/bin/sh\n"
        await h.runtime.spawner.spawn(request(id="a1"))
        # Made once as named, read, then made again with the unprivileged numbers.
        first, again = h.fake.called("create")
        assert first.user == "agent" and again.user == "65532:65532"
        await h.runtime.spawner.spawn(request(id="a2"))
        assert h.fake.called("create")[-1].user == "65532:65532"
        assert len(h.fake.called("create")) == 3 and len(h.fake.called("read_file")) == 2
