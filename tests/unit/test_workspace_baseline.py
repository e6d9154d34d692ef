"""The workspace's snapshot at spawn: an exec only where the workspace may hold files already."""

from __future__ import annotations

from pathlib import Path

from tests.unit.harness import Harness, harness, request


def _snapshot_execs(h: Harness) -> int:
    return sum(
        1 for _container, spec in h.fake.called("stream_exec") if "parallax-workspace" in spec.argv
    )


async def test_a_workspace_on_the_runtime_tmpfs_is_known_empty_without_an_exec(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        await h.runtime.spawner.spawn(request(id="a1"))
        assert _snapshot_execs(h) == 0
        base = h.runtime.workspace._store.load("a1")
        assert base is not None and base.files == {} and base.head is None
        assert base.root == "/workspace"


async def test_a_volume_at_above_or_inside_the_workspace_is_snapshotted_by_exec(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        await h.runtime.spawner.spawn(request(id="a1", volumes=["data-1:/workspace"]))
        assert _snapshot_execs(h) == 1
        await h.runtime.spawner.spawn(request(id="a2", volumes=["data-2:/workspace/src:ro"]))
        assert _snapshot_execs(h) == 2
        await h.runtime.spawner.spawn(
            request(id="a3", workdir="/workspace/app", volumes=["data-3:/workspace"])
        )
        assert _snapshot_execs(h) == 3
        # A volume elsewhere leaves the workspace on its tmpfs.
        await h.runtime.spawner.spawn(request(id="a4", volumes=["data-4:/data"]))
        assert _snapshot_execs(h) == 3
        assert h.runtime.workspace._store.load("a4") is not None
