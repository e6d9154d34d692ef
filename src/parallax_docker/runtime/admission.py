"""Admission: refuse a spawn the host cannot really hold, and only such a spawn.

Agents spend most of their life idle, waiting on a model: an idle agent uses a few MiB of a
512 MiB limit and no CPU. Limits are ceilings, not reservations, so by default
(``PARALLAX_ADMISSION=available``):

- **memory** is admitted against what the host really has. A spawn is admitted when the host's
  available memory (``MemAvailable``: what the kernel can give without swapping; what agents
  use now is already out of it), less a reserve for the host (``PARALLAX_MEMORY_RESERVE``), less
  what the agents not stopped may still grow by — a share (``PARALLAX_MEMORY_HEADROOM_SHARE``)
  of each one's limit — leaves the new agent its whole limit. Refused: 507 ``RESOURCE_LIMIT``
  with every number of that sum.
- **CPU** is not admitted: the kernel shares cores fairly among busy agents and an idle agent
  takes none. One agent's limit may still not exceed the host's cores (checked with the request).

``PARALLAX_ADMISSION=limits`` keeps the strict rule: the limits of every agent not stopped may
not add up past the host's memory times ``PARALLAX_MEMORY_OVERCOMMIT`` nor its cores times
``PARALLAX_CPU_OVERCOMMIT``. When the platform cannot tell available memory, memory is admitted
by that rule too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from parallax_docker.backends.base import EngineInfo
from parallax_docker.config import Settings
from parallax_docker.errors import ResourceLimitError
from parallax_docker.resources import NANO, format_bytes, human_bytes, parse_memory
from parallax_docker.runtime.agent_record import RELEASED, AgentRecord


@dataclass(frozen=True)
class Committed:
    """The limits of the agents that are not stopped."""

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


class Admission:
    def __init__(self, settings: Settings, available_memory: Callable[[], int | None]) -> None:
        self._settings = settings
        self._available_memory = available_memory
        self._reserve = parse_memory(settings.memory_reserve)

    def admit(self, memory_bytes: int, nano_cpus: int, used: Committed, engine: EngineInfo) -> None:
        """Raise ResourceLimitError (507, RESOURCE_LIMIT) when the spawn may not start."""
        settings = self._settings
        available = self._available_memory() if settings.admission == "available" else None
        if available is None:
            admit_memory_by_limits(
                memory_bytes, used, int(engine.memory_bytes * settings.memory_overcommit)
            )
        else:
            admit_memory_by_available(
                memory_bytes, used, available, self._reserve, settings.memory_headroom_share
            )
        if settings.admission == "limits":
            admit_cpu_by_limits(nano_cpus, used, int(engine.cpus * NANO * settings.cpu_overcommit))


def admit_memory_by_available(
    memory_bytes: int, used: Committed, available: int, reserve: int, share: float
) -> None:
    growth = int(used.memory_bytes * share)
    left = available - reserve - growth
    if memory_bytes <= left:
        return
    raise ResourceLimitError(
        f"not enough memory for this agent: it may use {human_bytes(memory_bytes)}; the host "
        f"has {human_bytes(available)} available, less {human_bytes(reserve)} kept for the "
        f"host and {human_bytes(growth)} for the {used.agents} running agents to grow into "
        f"({share:g} of their {human_bytes(used.memory_bytes)} of limits): "
        f"{human_bytes(max(0, left))} left",
        resolution="Ask for less memory, stop agents, or tune PARALLAX_MEMORY_RESERVE and "
        "PARALLAX_MEMORY_HEADROOM_SHARE (docs/reliability.md).",
        details={"memoryLeft": max(0, left), "memoryAvailable": available},
    )


def admit_memory_by_limits(memory_bytes: int, used: Committed, limit: int) -> None:
    left = max(0, limit - used.memory_bytes)
    if memory_bytes <= left:
        return
    raise ResourceLimitError(
        f"not enough memory left for this agent: asked {format_bytes(memory_bytes)}, "
        f"{format_bytes(left)} left of {format_bytes(limit)} ({used.agents} agents running)",
        details={"memoryLeft": left},
    )


def admit_cpu_by_limits(nano_cpus: int, used: Committed, limit: int) -> None:
    left = max(0, limit - used.nano_cpus)
    if nano_cpus <= left:
        return
    raise ResourceLimitError(
        f"not enough CPU left for this agent: asked {nano_cpus / NANO:g} cores, "
        f"{left / NANO:g} left of {limit / NANO:g} ({used.agents} agents running)",
        details={"cpuLeft": left / NANO},
    )
