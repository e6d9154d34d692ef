"""Reading agents on a Swarm: a service, its latest task, the task's node and container.

``get`` and ``list`` build each agent's ContainerState (state.py) from the manager's answers
and, when the task's node answers, its container's inspect there. ``placed`` says where an
agent's container is, for the calls only its node's engine can answer (exec, logs, stats,
terminals); what it learns is kept, and read again when a node says the container is gone.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Mapping
from typing import Any

from parallax_docker.backends.base import ContainerState, NodeInfo
from parallax_docker.backends.docker.engine import Engine
from parallax_docker.backends.docker.errors import engine_call
from parallax_docker.backends.swarm.engine import SwarmAPI, filters
from parallax_docker.backends.swarm.nodes import Nodes, on_node
from parallax_docker.backends.swarm.state import Placement, latest_task, placement, service_state
from parallax_docker.errors import AgentNotFoundError, AgentStateError, ParallaxError

log = logging.getLogger(__name__)

_INSPECT_CONCURRENCY = 16


class Readings:
    def __init__(self, api: SwarmAPI, nodes: Nodes) -> None:
        self._api = api
        self._nodes = nodes
        # service id -> its labels, for events that name only the service (a removal).
        self.labels: dict[str, Mapping[str, str]] = {}
        self._placed: dict[str, Placement] = {}

    async def service(self, service_id: str) -> dict[str, Any] | None:
        try:
            async with engine_call("service", "inspect", service_id[:12]):
                found = await self._api.inspect_service(service_id)
        except AgentNotFoundError:
            self.forget(service_id)
            return None
        self.labels[str(found.get("ID"))] = dict((found.get("Spec") or {}).get("Labels") or {})
        return found

    async def tasks(self, service_id: str) -> builtins.list[dict[str, Any]]:
        async with engine_call("task", "list", service_id[:12]):
            return await self._api.tasks(filters(service=[service_id]))

    def forget(self, service_id: str) -> None:
        self._placed.pop(service_id, None)
        self.labels.pop(service_id, None)

    async def get(self, service_id: str) -> ContainerState | None:
        service = await self.service(service_id)
        if service is None:
            return None
        return await self._state(service, latest_task(await self.tasks(service_id)))

    async def list(self, labels: Mapping[str, str]) -> builtins.list[ContainerState]:
        query = filters(label=[f"{k}={v}" for k, v in labels.items()])
        async with engine_call("service", "list"):
            services = await self._api.services(query)
        async with engine_call("task", "list"):
            tasks = await self._api.tasks(filters())
        by_service: dict[str, builtins.list[dict[str, Any]]] = {}
        for task in tasks:
            by_service.setdefault(str(task.get("ServiceID")), []).append(task)
        gate = asyncio.Semaphore(_INSPECT_CONCURRENCY)

        async def one(service: dict[str, Any]) -> ContainerState:
            self.labels[str(service.get("ID"))] = dict(
                (service.get("Spec") or {}).get("Labels") or {}
            )
            async with gate:
                return await self._state(
                    service, latest_task(by_service.get(str(service.get("ID")), []))
                )

        return list(await asyncio.gather(*(one(s) for s in services)))

    async def _state(
        self, service: Mapping[str, Any], task: Mapping[str, Any] | None
    ) -> ContainerState:
        service_id = str(service.get("ID"))
        if task is None:
            self._placed.pop(service_id, None)
            return service_state(service, None, None, None)
        where = placement(service_id, task)
        self._placed[service_id] = where
        node = await self._nodes.get(where.node_id)
        container = None
        if node is not None and node.state == "ready" and where.container_id:
            container = await self._container(node, where.container_id)
        return service_state(service, task, node, container)

    async def _container(self, node: NodeInfo, container_id: str) -> dict[str, Any] | None:
        try:
            async with on_node(node), engine_call("container", "inspect", container_id[:12]):
                return await self._nodes.engine(node).containers.inspect(container_id)
        except ParallaxError as exc:
            # Gone (its task history was pruned) or the node did not answer just now: the
            # task's own status tells what is known.
            log.debug("no inspect of %s on %s: %s", container_id[:12], node.name, exc.code)
            return None

    async def placed(self, service_id: str, fresh: bool = False) -> tuple[NodeInfo, Engine, str]:
        """The node, its engine and the container of the agent's current task."""
        where = None if fresh else self._placed.get(service_id)
        if where is None or where.container_id is None:
            task = latest_task(await self.tasks(service_id))
            if task is None:
                raise AgentStateError("the agent has not been started on any node")
            where = placement(service_id, task)
            self._placed[service_id] = where
        node = await self._nodes.get(where.node_id)
        if node is None or where.container_id is None:
            raise AgentStateError("the agent's task has no container on a node yet")
        return node, self._nodes.engine(node), where.container_id

    def current_container(self, service_id: str) -> str | None:
        """The container of the agent's task as last seen (None: not known)."""
        where = self._placed.get(service_id)
        return where.container_id if where is not None else None

    def note(self, where: Placement) -> None:
        """The agent's task is now ``where`` (a start or restart placed it)."""
        self._placed[where.service_id] = where

    def placed_on(self, node_id: str) -> builtins.list[str]:
        """The agents (service ids) last seen with their task on ``node_id``."""
        return [sid for sid, where in self._placed.items() if where.node_id == node_id]
