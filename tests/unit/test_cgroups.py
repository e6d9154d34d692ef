"""Reading a container's usage from cgroup files: parsing, v1 and v2 layouts, fallbacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from parallax_docker.backends.docker.cgroups import (
    CgroupReader,
    locate,
    parse_flat_keyed,
    parse_limit,
    parse_net_dev,
    parse_proc_cgroup,
)

CID = "ab" * 32
PID = 4242

V1_PROC_CGROUP = f"""12:pids:/docker/{CID}
9:memory:/docker/{CID}
3:cpu,cpuacct:/docker/{CID}
1:name=systemd:/docker/{CID}
0::/docker/{CID}
"""

# /proc/<pid>/net/dev: two header lines, then "iface: 8 receive fields, 8 transmit fields".
NET_DEV = (
    "Inter-|   Receive  |  Transmit\n"
    " face |bytes packets errs drop fifo frame compressed multicast|bytes packets ...\n"
    "    lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0\n"
    "  eth0: 5120 40 0 0 0 0 0 0 2048 20 0 0 0 0 0 0\n"
    "  eth1: 10 1 0 0 0 0 0 0 20 2 0 0 0 0 0 0\n"
)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _proc(tmp_path: Path, cgroup_text: str) -> Path:
    proc = tmp_path / "proc"
    _write(proc / str(PID) / "cgroup", cgroup_text)
    _write(proc / str(PID) / "net" / "dev", NET_DEV)
    return proc


def _v1_tree(root: Path, rel: str = f"docker/{CID}") -> None:
    _write(root / "cpuacct" / rel / "cpuacct.usage", "123456789\n")
    _write(root / "memory" / rel / "memory.usage_in_bytes", "10485760\n")
    _write(
        root / "memory" / rel / "memory.stat",
        "cache 4096\ninactive_file 999\ntotal_inactive_file 2097152\n",
    )
    _write(root / "memory" / rel / "memory.limit_in_bytes", "67108864\n")
    _write(root / "pids" / rel / "pids.current", "7\n")


def _v2_tree(root: Path, rel: str) -> None:
    _write(root / "cgroup.controllers", "cpu memory pids\n")
    _write(root / rel / "cpu.stat", "usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\n")
    _write(root / rel / "memory.current", "8388608\n")
    _write(root / rel / "memory.stat", "anon 100\ninactive_file 1048576\n")
    _write(root / rel / "memory.max", "max\n")
    _write(root / rel / "pids.current", "3\n")


def test_proc_cgroup_maps_each_v1_controller_and_the_v2_path() -> None:
    paths = parse_proc_cgroup(V1_PROC_CGROUP)
    assert paths["cpuacct"] == paths["cpu"] == paths["memory"] == f"/docker/{CID}"
    assert paths["name=systemd"] == f"/docker/{CID}"
    assert paths[""] == f"/docker/{CID}"


def test_flat_keyed_files_skip_lines_that_do_not_parse() -> None:
    assert parse_flat_keyed("a 1\nbroken\nb x\nc 3\n") == {"a": 1, "c": 3}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("max\n", 0), ("9223372036854771712\n", 0), ("67108864\n", 67108864), ("", 0)],
)
def test_memory_limit_reads_no_limit_as_zero(text: str, expected: int) -> None:
    assert parse_limit(text) == expected


def test_net_dev_sums_every_interface_but_loopback() -> None:
    assert parse_net_dev(NET_DEV) == (5130, 2068)


def test_locate_refuses_paths_that_do_not_name_the_container(tmp_path: Path) -> None:
    other = parse_proc_cgroup(V1_PROC_CGROUP.replace(CID, "cd" * 32))
    assert locate(CID, other, tmp_path, unified=False) is None
    assert locate(CID, parse_proc_cgroup(V1_PROC_CGROUP), tmp_path, unified=False) is not None


def test_reads_cgroup_v1_counters(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    _v1_tree(root)
    reader = CgroupReader(root, _proc(tmp_path, V1_PROC_CGROUP))
    sample = reader.read_usage(CID, PID)
    assert sample is not None
    assert sample.cpu_total_ns == 123456789
    # Reclaimable page cache counted out, as docker stats does on v1.
    assert sample.memory_usage == 10485760 - 2097152
    assert sample.memory_limit == 67108864
    assert sample.pids == 7
    assert (sample.rx_bytes, sample.tx_bytes) == (5130, 2068)


def test_reads_cgroup_v2_counters(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    rel = f"system.slice/docker-{CID}.scope"
    _v2_tree(root, rel)
    reader = CgroupReader(root, _proc(tmp_path, f"0::/{rel}\n"))
    sample = reader.read_usage(CID, PID)
    assert sample is not None
    assert sample.cpu_total_ns == 5_000_000
    assert sample.memory_usage == 8388608 - 1048576
    assert sample.memory_limit == 0
    assert sample.pids == 3


def test_finds_the_usual_directory_when_proc_paths_are_namespaced(tmp_path: Path) -> None:
    # Inside a cgroup namespace /proc/<pid>/cgroup shows "/": the engine's layout is tried.
    root = tmp_path / "cgroup"
    _v1_tree(root)
    proc = _proc(tmp_path, f"0::/docker/{CID}\n4:memory:/\n2:cpuacct:/\n1:pids:/\n")
    sample = CgroupReader(root, proc).read_usage(CID, PID)
    assert sample is not None and sample.pids == 7


def test_a_pid_that_is_not_the_container_reads_nothing(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    _v1_tree(root)
    proc = _proc(tmp_path, V1_PROC_CGROUP.replace(CID, "cd" * 32))
    assert CgroupReader(root, proc).read_usage(CID, PID) is None


def test_without_pid_or_files_the_caller_falls_back(tmp_path: Path) -> None:
    proc = _proc(tmp_path, V1_PROC_CGROUP)
    assert CgroupReader(tmp_path / "cgroup", proc).read_usage(CID, None) is None
    assert CgroupReader(tmp_path / "missing", proc).read_usage(CID, PID) is None
    assert CgroupReader(None, proc).read_usage(CID, PID) is None


def test_a_removed_cgroup_is_forgotten_and_looked_up_again(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    _v1_tree(root)
    reader = CgroupReader(root, _proc(tmp_path, V1_PROC_CGROUP))
    assert reader.read_usage(CID, PID) is not None
    (root / "pids" / "docker" / CID / "pids.current").unlink()
    assert reader.read_usage(CID, PID) is None
    _write(root / "pids" / "docker" / CID / "pids.current", "2\n")
    sample = reader.read_usage(CID, PID)
    assert sample is not None and sample.pids == 2
