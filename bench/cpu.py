"""CPU seconds spent by the parts of a container stack, read from /proc and the cgroup files.

A process's share is its ``utime + stime`` plus that of its children it has reaped (``cutime +
cstime``: the ``runc`` a shim starts for every exec is counted in its shim). What runs inside
the containers (the agents' processes, their heartbeats, a health check's probe) is read from
the containers' parent cgroup, which sums them all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
CGROUP = Path("/sys/fs/cgroup")


def process_cpu_s(pid: int) -> float:
    """utime + stime + cutime + cstime of ``pid`` in seconds (0 when it is gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces and ')': count fields after the last ')'.
    fields = text.rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / TICKS


def command_line(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def find_processes(match: Callable[[str], bool]) -> list[int]:
    """Pids whose command line ``match`` accepts."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and match(command_line(int(entry.name))):
            found.append(int(entry.name))
    return found


def cgroup_cpu_s(parent: str) -> float:
    """CPU seconds of every process ever in the cgroup ``parent`` (v1 cpuacct, or v2)."""
    v1 = CGROUP / "cpuacct" / parent / "cpuacct.usage"
    if v1.exists():
        return int(v1.read_text()) / 1e9
    v2 = CGROUP / parent / "cpu.stat"
    for line in v2.read_text().splitlines():
        if line.startswith("usage_usec"):
            return int(line.split()[1]) / 1e6
    return 0.0


@dataclass
class Parts:
    """The processes (and the container cgroup) whose CPU is measured, by part."""

    processes: dict[str, list[int]]
    cgroup: str | None

    def sample(self) -> dict[str, float]:
        taken = {name: sum(process_cpu_s(p) for p in pids) for name, pids in self.processes.items()}
        taken["containers"] = cgroup_cpu_s(self.cgroup) if self.cgroup else 0.0
        return taken


def engine_parts(
    dockerd_pid: int, engine_root: Path, cgroup_parent: str, service_pids: Iterable[int] = ()
) -> Parts:
    """dockerd, its containerd, the shims of its containers, the containers and the service."""
    socket = str(engine_root / "exec" / "containerd" / "containerd.sock")
    config = str(engine_root / "exec" / "containerd" / "containerd.toml")
    return Parts(
        processes={
            "dockerd": [dockerd_pid],
            "containerd": find_processes(
                lambda cmd: cmd.startswith("containerd ") and config in cmd
            ),
            "shims": find_processes(lambda cmd: "containerd-shim" in cmd and socket in cmd),
            "service": list(service_pids),
        },
        cgroup=cgroup_parent,
    )


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per part between two samples, and their total."""
    parts = {name: round(after[name] - before.get(name, 0.0), 3) for name in after}
    parts["total"] = round(sum(parts.values()), 3)
    return parts
