"""What the host can still give (backends/docker/host_memory.py): MemAvailable."""

from __future__ import annotations

from pathlib import Path

from parallax_docker.backends.docker import host_memory


def test_available_memory_reads_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 100 kB\nMemAvailable:   2048 kB\n")
    assert host_memory.available(meminfo) == 2048 * 1024
    assert host_memory.available(tmp_path / "none") is None
    meminfo.write_text("MemTotal: 100 kB\n")
    assert host_memory.available(meminfo) is None


def test_this_hosts_available_memory_is_read() -> None:
    available = host_memory.available()
    assert available is not None and available > 0
