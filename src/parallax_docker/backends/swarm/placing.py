"""Placing an agent's task on a node, and refusing it when the node's container lacks anything.

``wait`` follows a new task until its container runs (or has already ended, which the
runtime's readiness then reports), and says why when no node takes it in time. ``verify``
checks the container on the node that runs it, as the single-engine backend checks a created
container: its inspect against the service's spec, the swap limit (set there first: API 1.41
cannot say it per service), and no-new-privileges, which only the container's own
``/proc/1/status`` shows (the nodes' engines set it by default). Anything missing refuses it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from parallax_docker.backends.base import ExecSpec
from parallax_docker.backends.docker import processes
from parallax_docker.backends.docker.engine import Engine
from parallax_docker.backends.docker.errors import engine_call
from parallax_docker.backends.swarm import verify
from parallax_docker.backends.swarm.nodes import Nodes, on_node
from parallax_docker.backends.swarm.readings import Readings
from parallax_docker.backends.swarm.state import ENDED, RUNNING, Placement, latest_task, placement
from parallax_docker.errors import AgentStateError, EngineError, ResourceLimitError

log = logging.getLogger(__name__)

_FIRST_DELAY_S = 0.05
_MAX_DELAY_S = 0.5
_PROBE_TIMEOUT_S = 10.0


class Placing:
    def __init__(self, nodes: Nodes, readings: Readings, *, timeout_s: float) -> None:
        self._nodes = nodes
        self._readings = readings
        self._timeout_s = timeout_s

    async def task_ids(self, service_id: str) -> set[str]:
        return {str(t.get("ID")) for t in await self._readings.tasks(service_id)}

    async def wait(self, service_id: str, before: set[str]) -> Placement:
        """The service's first task not in ``before``, once its container runs or has ended."""
        deadline = time.monotonic() + self._timeout_s
        delay = _FIRST_DELAY_S
        task: Mapping[str, Any] | None = None
        while True:
            tasks = [t for t in await self._readings.tasks(service_id) if t.get("ID") not in before]
            task = latest_task(tasks)
            if task is not None:
                where = placement(service_id, task)
                if where.container_id and (where.state in RUNNING or where.state in ENDED):
                    return where
                if where.state in ENDED:
                    log.warning(
                        "no node started the task of service %s: %s",
                        service_id[:12],
                        (task.get("Status") or {}).get("Err"),
                    )
                    raise EngineError(
                        "the node chosen for the agent could not start it",
                        resolution="The service log says why (image pull, mounts); check the "
                        "node with `docker node ps`.",
                    )
            if time.monotonic() > deadline:
                raise _not_placed(task, self._timeout_s)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_DELAY_S)

    async def verify(self, service: Mapping[str, Any], where: Placement) -> None:
        """Refuse (InsecureSpawnError) a placed container that lacks any control."""
        node = await self._nodes.get(where.node_id)
        if node is None or where.container_id is None:
            raise EngineError("the node running the agent is gone")
        engine = self._nodes.engine(node)
        async with on_node(node):
            inspect = await _started(engine, where.container_id)
            running = bool((inspect.get("State") or {}).get("Running"))
            no_new_privs = False
            if running:
                inspect = await self._limit_swap(engine, where.container_id, service, inspect)
                no_new_privs = await _no_new_privs(engine, where.container_id)
        # A container that has ended already runs nothing: what it lacked at run time cannot
        # be set or asked any more, and its exit is what the runtime reports.
        problems = verify.placed_problems(
            service, inspect, no_new_privs=no_new_privs, running=running
        )
        if problems:
            raise verify.refuse(problems, f"container on node {node.name}")

    async def _limit_swap(
        self,
        engine: Engine,
        container_id: str,
        service: Mapping[str, Any],
        inspect: dict[str, Any],
    ) -> dict[str, Any]:
        limits = (
            ((service.get("Spec") or {}).get("TaskTemplate") or {}).get("Resources") or {}
        ).get("Limits") or {}
        memory = int(limits.get("MemoryBytes") or 0)
        if not memory or (inspect.get("HostConfig") or {}).get("MemorySwap") == memory:
            return inspect
        async with engine_call("container", "update", container_id[:12]):
            await engine.containers.update(container_id, {"Memory": memory, "MemorySwap": memory})
        return await _inspect(engine, container_id)


async def _started(engine: Engine, container_id: str) -> dict[str, Any]:
    """The container's inspect once the node has started it (a task reads "starting" while
    the start is still under way) or it has ended."""
    delay = _FIRST_DELAY_S
    deadline = time.monotonic() + _PROBE_TIMEOUT_S
    while True:
        inspect = await _inspect(engine, container_id)
        if (inspect.get("State") or {}).get("Status") != "created" or time.monotonic() > deadline:
            return inspect
        await asyncio.sleep(delay)
        delay = min(delay * 2, _MAX_DELAY_S)


async def _inspect(engine: Engine, container_id: str) -> dict[str, Any]:
    async with engine_call("container", "inspect", container_id[:12]):
        return await engine.containers.inspect(container_id)


async def _no_new_privs(engine: Engine, container_id: str) -> bool:
    try:
        result = await processes.run(
            engine,
            container_id,
            ExecSpec(argv=verify.NO_NEW_PRIVS_PROBE),
            _PROBE_TIMEOUT_S,
        )
    except AgentStateError:
        # It ended meanwhile; the state read next tells the runtime.
        return not (await _inspect(engine, container_id)).get("State", {}).get("Running")
    return result.exit_code == 0 and verify.no_new_privileges(
        result.output.decode(errors="replace")
    )


def _not_placed(task: Mapping[str, Any] | None, timeout_s: float) -> Exception:
    status = (task or {}).get("Status") or {}
    if task is None or not task.get("NodeID"):
        # The scheduler's own words ("no suitable node (insufficient resources on 3 nodes)")
        # carry no request value.
        why = str(status.get("Err") or status.get("Message") or "no node was chosen")
        return ResourceLimitError(
            f"no node took the agent within {timeout_s:g}s: {why[:200]}",
            resolution="Free memory or CPU on a node, add nodes, or lower the agent's limits.",
        )
    return EngineError(
        f"the node chosen for the agent did not start it within {timeout_s:g}s "
        f"(its task is {status.get('State', 'pending')})",
        resolution="Pulling a large image takes a while the first time; raise "
        "PARALLAX_SWARM_PLACEMENT_TIMEOUT_S, or check the node.",
    )
