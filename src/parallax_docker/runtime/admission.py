"""Admission: refuse a spawn that would commit more memory or CPU than the host can give.

Committed means the limits of every agent that is not stopped. Memory is not compressible, so
its overcommit defaults to 1 (never more than the host has); CPU is shared fairly by the kernel,
so a larger overcommit is the default.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from parallax_docker.errors import ResourceLimitError
from parallax_docker.resources import NANO, format_bytes
from parallax_docker.runtime.lifecycle import RELEASED, AgentRecord


@dataclass(frozen=True)
class Capacity:
    memory_bytes: int
    nano_cpus: int


@dataclass(frozen=True)
class Committed:
    memory_bytes: int
    nano_cpus: int
    agents: int


def committed(records: Iterable[AgentRecord]) -> Committed:
    memory = cpus = count = 0
    for record in records:
        if record.status not in RELEASED:
            memory += record.labels.memory_bytes
            cpus += record.labels.nano_cpus
            count += 1
    return Committed(memory, cpus, count)


def capacity(
    host_memory: int, host_cpus: int, memory_overcommit: float, cpu_overcommit: float
) -> Capacity:
    return Capacity(int(host_memory * memory_overcommit), int(host_cpus * NANO * cpu_overcommit))


def admit(memory_bytes: int, nano_cpus: int, used: Committed, limit: Capacity) -> None:
    """Raise ResourceLimitError (507, RESOURCE_LIMIT) naming what is left."""
    memory_left = max(0, limit.memory_bytes - used.memory_bytes)
    cpu_left = max(0, limit.nano_cpus - used.nano_cpus)
    if memory_bytes > memory_left:
        raise ResourceLimitError(
            f"not enough memory left for this agent: asked {format_bytes(memory_bytes)}, "
            f"{format_bytes(memory_left)} left of {format_bytes(limit.memory_bytes)} "
            f"({used.agents} agents running)",
            details={"memoryLeft": memory_left, "cpuLeft": cpu_left / NANO},
        )
    if nano_cpus > cpu_left:
        raise ResourceLimitError(
            f"not enough CPU left for this agent: asked {nano_cpus / NANO:g} cores, "
            f"{cpu_left / NANO:g} left of {limit.nano_cpus / NANO:g} "
            f"({used.agents} agents running)",
            details={"memoryLeft": memory_left, "cpuLeft": cpu_left / NANO},
        )
