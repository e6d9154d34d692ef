"""What happens to agents on a Swarm, as one stream of ContainerEvents keyed by service id.

Three sources, merged:
- the manager's service events (create, update, remove: the agent's "destroy");
- the manager's node events: a node going down or drained is an ``update`` for every agent
  placed there, after which the runtime reads the agent's state and finds it lost;
- every node's own container events (start, die with the exit code, oom, health), read from its
  engine over mutual TLS. A container's "destroy" is not the agent's: a new task replaces it.
The manager's stream is the spine: when it ends the whole stream ends (the runtime resyncs). A
node's stream that breaks is followed again after a pause, and the agents placed on that node
are read again then, so that nothing that happened meanwhile is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from parallax_docker.backends.base import ContainerEvent, NodeInfo
from parallax_docker.backends.docker import translate as docker_translate
from parallax_docker.backends.docker.engine import Engine, label_filters
from parallax_docker.backends.docker.errors import engine_call
from parallax_docker.backends.swarm.engine import filters
from parallax_docker.backends.swarm.nodes import Nodes
from parallax_docker.backends.swarm.readings import Readings
from parallax_docker.backends.swarm.translate import SERVICE_LABEL
from parallax_docker.errors import EngineError, ParallaxError

log = logging.getLogger(__name__)

_NODE_RETRY_S = (0.5, 5.0)
_ACTIONS = {"create": "create", "update": "update", "remove": "destroy"}
_CONTAINER_ACTIONS = frozenset({"start", "die", "oom", "health_status"})

Item = ContainerEvent | BaseException
Follow = Callable[[NodeInfo], None]


class SwarmEvents:
    def __init__(self, manager: Engine, nodes: Nodes, readings: Readings) -> None:
        self._manager = manager
        self._nodes = nodes
        self._readings = readings

    async def watch(
        self, labels: Mapping[str, str], since_ns: int | None
    ) -> AsyncIterator[ContainerEvent]:
        since = (
            None
            if since_ns is None
            else f"{since_ns // 1_000_000_000}.{since_ns % 1_000_000_000:09d}"
        )
        queue: asyncio.Queue[Item] = asyncio.Queue()
        followers: dict[str, asyncio.Task[None]] = {}

        def follow(node: NodeInfo) -> None:
            task = followers.get(node.id)
            if task is None or task.done():
                followers[node.id] = asyncio.create_task(
                    self._follow_node(node.id, labels, since, queue),
                    name=f"parallax-swarm-events-{node.name}",
                )

        manager = asyncio.create_task(self._follow_manager(since, queue, follow))
        try:
            for node in await self._nodes.list(fresh=True):
                follow(node)
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            for task in (manager, *followers.values()):
                task.cancel()
            for task in (manager, *followers.values()):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _follow_manager(
        self, since: str | None, queue: asyncio.Queue[Item], follow: Follow
    ) -> None:
        try:
            async with engine_call("engine", "events"):
                stream = self._manager.events.stream(filters(type=["service", "node"]), since)
                async for message in stream:
                    await self._manager_event(message, queue, follow)
            raise EngineError("the Swarm manager closed its event stream")
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                queue.put_nowait(exc)
            raise

    async def _manager_event(
        self, message: Mapping[str, Any], queue: asyncio.Queue[Item], follow: Follow
    ) -> None:
        actor = message.get("Actor") or {}
        subject = str(actor.get("ID") or "")
        attributes = actor.get("Attributes") or {}
        time_ns = int(message.get("timeNano") or 0)
        if message.get("Type") == "node":
            self._nodes.forget()
            node = await self._nodes.get(subject)
            if node is not None and node.state == "ready":
                follow(node)
            if "state.new" in attributes or "availability.new" in attributes:
                for service_id in self._readings.placed_on(subject):
                    self._put(queue, "update", service_id, time_ns)
            return
        action = _ACTIONS.get(str(message.get("Action")))
        if action is None:
            return
        if action != "destroy" and subject not in self._readings.labels:
            with contextlib.suppress(ParallaxError):
                await self._readings.service(subject)  # learns its labels
        self._put(queue, action, subject, time_ns)
        if action == "destroy":
            self._readings.forget(subject)

    def _put(self, queue: asyncio.Queue[Item], action: str, service_id: str, time_ns: int) -> None:
        labels = self._readings.labels.get(service_id)
        if labels is not None:
            queue.put_nowait(ContainerEvent(action, service_id, dict(labels), time_ns))

    async def _follow_node(
        self,
        node_id: str,
        labels: Mapping[str, str],
        since: str | None,
        queue: asyncio.Queue[Item],
    ) -> None:
        delay = _NODE_RETRY_S[0]
        first = True
        while True:
            node = await _quietly(self._nodes.get(node_id))
            if node is None or node.state != "ready":
                return  # the node event that brings it back starts a new follower
            if not first:
                # What happened while the stream was down: read those agents again.
                for service_id in self._readings.placed_on(node_id):
                    self._put(queue, "update", service_id, 0)
            try:
                async with engine_call("engine", "events"):
                    stream = self._nodes.engine(node).events.stream(
                        label_filters(labels, type=["container"]), since if first else None
                    )
                    first = False
                    async for message in stream:
                        delay = _NODE_RETRY_S[0]
                        event = self._container_event(message)
                        if event is not None:
                            queue.put_nowait(event)
            except ParallaxError as exc:
                log.info("lost the events of node %s: %s", node.name, exc.code)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _NODE_RETRY_S[1])

    def _container_event(self, message: Mapping[str, Any]) -> ContainerEvent | None:
        """A node's container event as the agent's; None for a container that is no longer
        the agent's (the task it ran was replaced: its late exit is not the agent's)."""
        event = docker_translate.container_event(message)
        if event is None or event.action not in _CONTAINER_ACTIONS:
            return None
        service_id = event.labels.get(SERVICE_LABEL)
        if not service_id:
            return None
        current = self._readings.current_container(service_id)
        action = event.action
        if current is not None and current != event.container_id:
            if action != "start":
                return None
            action = "update"  # a task the runtime did not place: read the agent again
        return ContainerEvent(action, service_id, event.labels, event.time_ns, event.exit_code)


async def _quietly(call: Awaitable[NodeInfo | None]) -> NodeInfo | None:
    try:
        return await call
    except ParallaxError:
        return None
