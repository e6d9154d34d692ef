"""Garbage collection on the fake platform: what is reported, what is removed, what is kept."""

from __future__ import annotations

from pathlib import Path

from parallax_docker.backends.base import VolumeInfo
from parallax_docker.runtime import lifecycle
from parallax_docker.runtime.labels import EXECUTION_LABEL
from tests.unit.fakes import exited_state
from tests.unit.harness import harness, request


async def test_gc_reports_then_removes_exited_agents_and_unused_volumes(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.runtime.spawner.spawn(request(id="done"))
        await h.runtime.spawner.spawn(request(id="alive"))
        record = h.runtime.registry.get("done")
        assert record.state is not None
        lifecycle.observed(record, exited_state(record.state, 0))
        h.fake.volumes["cache"] = VolumeInfo("cache", dict(h.runtime.selector), None)
        execution = {**h.runtime.selector, EXECUTION_LABEL: "e1"}
        h.fake.volumes["parallax-exec-e1"] = VolumeInfo("parallax-exec-e1", execution, None)

        report = await h.runtime.gc.collect(dry_run=True)
        assert report.containers == ["parallax-done"] and report.volumes == ["cache"]
        assert not report.removed and h.runtime.registry.find("done") is not None

        report = await h.runtime.gc.collect(dry_run=False)
        assert report.removed and report.failed == []
        assert h.runtime.registry.find("done") is None
        assert h.runtime.registry.find("alive") is not None
        assert set(h.fake.volumes) == {"parallax-exec-e1"}


async def test_gc_removes_pooled_containers_no_pool_holds(tmp_path: Path) -> None:
    async with harness(tmp_path, PARALLAX_POOL="claude:1") as h:
        assert h.runtime.pool is not None
        await h.runtime.pool._fill()
        left = dict(h.fake.containers)
    async with harness(tmp_path) as again:
        again.fake.containers.update(left)
        report = await again.runtime.gc.collect(dry_run=False)
        assert len(report.containers) == 1 and again.fake.containers == {}
