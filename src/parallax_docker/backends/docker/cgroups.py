"""A container's usage counters read straight from the host's cgroup files (v1 and v2).

The engine's stats call is a round trip through dockerd that, under load, takes from tens of
milliseconds to seconds. The kernel keeps the same counters in a few small files, which this
module reads in well under a millisecond: CPU time, memory in use (page cache counted out, as
``docker stats`` does), the memory limit, the process count, and network bytes from the
container's network namespace (``/proc/<pid>/net/dev``).

It works when the engine runs on this host and its cgroup tree and /proc are visible from here
(the usual set-up). Anywhere else (a remote engine, a service in a container without the host's
cgroups, a container that is not running) ``read_usage`` returns None and the caller uses the
engine's one-shot stats instead. Parsing is in pure functions; only ``CgroupReader`` touches
the filesystem.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from parallax_docker.backends.base import StatsSample

# cgroup v1 reports "no limit" as a huge page-aligned number.
_V1_UNLIMITED = 1 << 62
_V1_CONTROLLERS = ("memory", "cpuacct", "pids")


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """Controller -> cgroup path, from the text of ``/proc/<pid>/cgroup``.

    cgroup v1 lines read ``N:cpu,cpuacct:/docker/<id>`` (one entry per controller named); the
    v2 line reads ``0::/system.slice/docker-<id>.scope`` and is returned under the key ``""``.
    """
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            paths[""] = path
            continue
        for controller in controllers.split(","):
            paths[controller] = path
    return paths


def parse_flat_keyed(text: str) -> dict[str, int]:
    """``key value`` lines (memory.stat, cpu.stat); lines that do not parse are skipped."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        try:
            values[key] = int(value.strip())
        except ValueError:
            continue
    return values


def parse_limit(text: str) -> int:
    """A memory limit file: bytes, or 0 for no limit ("max" on v2, a huge number on v1)."""
    value = text.strip()
    if value in ("", "max"):
        return 0
    number = int(value)
    return 0 if number >= _V1_UNLIMITED else number


def parse_net_dev(text: str) -> tuple[int, int]:
    """(rx bytes, tx bytes) summed over the interfaces of ``/proc/<pid>/net/dev`` but ``lo``."""
    rx = tx = 0
    for line in text.splitlines()[2:]:
        name, sep, counters = line.partition(":")
        if not sep or name.strip() == "lo":
            continue
        fields = counters.split()
        if len(fields) < 9:
            continue
        rx += int(fields[0])
        tx += int(fields[8])
    return rx, tx


@dataclass(frozen=True)
class CgroupDirs:
    """Where one container's counters live: v1 per controller, or one v2 directory."""

    version: int
    memory: Path
    cpu: Path
    pids: Path


def locate(
    container_id: str, proc_cgroup: Mapping[str, str], root: Path, unified: bool
) -> CgroupDirs | None:
    """The container's cgroup directories from its ``/proc/<pid>/cgroup`` entries.

    None unless the paths name the container (a sanity check: a reused pid, or a cgroup
    namespace that hides the real paths, must not make us read another cgroup's numbers).
    """
    if unified:
        path = proc_cgroup.get("")
        if path is None or container_id not in path:
            return None
        folder = root / path.lstrip("/")
        return CgroupDirs(2, folder, folder, folder)
    found = {}
    for controller in _V1_CONTROLLERS:
        path = proc_cgroup.get(controller)
        if path is None or container_id not in path:
            return None
        found[controller] = root / controller / path.lstrip("/")
    return CgroupDirs(1, found["memory"], found["cpuacct"], found["pids"])


def candidates(container_id: str, root: Path, unified: bool) -> Iterator[CgroupDirs]:
    """Where the engine puts a container's cgroup with the cgroupfs and systemd drivers."""
    relative = (f"docker/{container_id}", f"system.slice/docker-{container_id}.scope")
    for rel in relative:
        if unified:
            yield CgroupDirs(2, root / rel, root / rel, root / rel)
        else:
            yield CgroupDirs(1, root / "memory" / rel, root / "cpuacct" / rel, root / "pids" / rel)


def _read(path: Path) -> str:
    with open(path, encoding="ascii", errors="replace") as handle:
        return handle.read()


def read_counters(dirs: CgroupDirs) -> tuple[int, int, int, int]:
    """(cpu ns, memory in use, memory limit, pids) from ``dirs``; OSError if unreadable."""
    if dirs.version == 1:
        cpu_ns = int(_read(dirs.cpu / "cpuacct.usage"))
        usage = int(_read(dirs.memory / "memory.usage_in_bytes"))
        stat = parse_flat_keyed(_read(dirs.memory / "memory.stat"))
        cache = stat.get("total_inactive_file", 0)
        limit = parse_limit(_read(dirs.memory / "memory.limit_in_bytes"))
    else:
        cpu_ns = parse_flat_keyed(_read(dirs.cpu / "cpu.stat")).get("usage_usec", 0) * 1000
        usage = int(_read(dirs.memory / "memory.current"))
        stat = parse_flat_keyed(_read(dirs.memory / "memory.stat"))
        cache = stat.get("inactive_file", 0)
        limit = parse_limit(_read(dirs.memory / "memory.max"))
    pids = int(_read(dirs.pids / "pids.current"))
    return cpu_ns, max(0, usage - cache), limit, pids


class CgroupReader:
    """Reads containers' counters from the cgroup filesystem under ``root`` and ``proc``.

    Directories found once are kept per container id; a read that fails forgets them, so a
    restarted container (same id, same cgroup) or a removed one is looked up again.
    """

    def __init__(self, root: Path | None = Path("/sys/fs/cgroup"), proc: Path = Path("/proc")):
        self._root = root
        self._proc = proc
        self._dirs: dict[str, CgroupDirs] = {}
        self._unified: bool | None = None

    @property
    def enabled(self) -> bool:
        return self._root is not None and self._root.is_dir()

    def _is_unified(self, root: Path) -> bool:
        if self._unified is None:
            # A pure v2 host mounts the unified tree at the root; hybrid v1 hosts have
            # controller directories there (and a controller-less "unified" subtree).
            self._unified = (root / "cgroup.controllers").exists()
        return self._unified

    def forget(self, container_id: str) -> None:
        self._dirs.pop(container_id, None)

    def read_usage(self, container_id: str, pid: int | None) -> StatsSample | None:
        """The container's counters, or None when they cannot be read from here."""
        root = self._root
        if root is None or not pid or len(container_id) != 64:
            # Without the pid there is no network namespace to read bytes from.
            return None
        try:
            # Read every time: a pid is only this container's while the container runs (a
            # stopped container's pid may be reused by anything).
            own = _read(self._proc / str(pid) / "cgroup")
            if container_id not in own:
                return None
            rx, tx = parse_net_dev(_read(self._proc / str(pid) / "net" / "dev"))
            dirs = self._dirs.get(container_id) or self._find(container_id, own, root)
            if dirs is None:
                return None
            cpu_ns, memory, limit, pids = read_counters(dirs)
        except (OSError, ValueError):
            self._dirs.pop(container_id, None)
            return None
        self._dirs[container_id] = dirs
        return StatsSample(
            cpu_total_ns=cpu_ns,
            system_cpu_ns=0,
            online_cpus=os.cpu_count() or 1,
            memory_usage=memory,
            memory_limit=limit,
            pids=pids,
            rx_bytes=rx,
            tx_bytes=tx,
        )

    def _find(self, container_id: str, proc_cgroup: str, root: Path) -> CgroupDirs | None:
        unified = self._is_unified(root)
        found = locate(container_id, parse_proc_cgroup(proc_cgroup), root, unified)
        if found is not None and found.memory.is_dir():
            return found
        for dirs in candidates(container_id, root, unified):
            if dirs.memory.is_dir() and dirs.cpu.is_dir() and dirs.pids.is_dir():
                return dirs
        return None
