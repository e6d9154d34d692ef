"""Named volumes on a Swarm: local to the node that holds them, and agents placed with them.

A volume lives on one node's engine. An agent that mounts one runs on that node (a placement
constraint); one whose volumes live on different nodes, or on a node that cannot take agents
now, is refused with PLACEMENT_CONFLICT instead of being split. A volume that does not exist
yet is made on the node with the fewest agents first, so that all the agents of an execution
(which share its home volume) meet there. Host bind mounts were checked against the manager's
own filesystem, so an agent with one runs on the manager the runtime talks to.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Mapping

from parallax_docker.backends.base import ContainerSpec, NodeInfo, VolumeInfo
from parallax_docker.backends.docker import translate as docker_translate
from parallax_docker.backends.docker.engine import label_filters
from parallax_docker.backends.docker.errors import engine_call, idempotent_call
from parallax_docker.backends.swarm.engine import SwarmAPI, filters
from parallax_docker.backends.swarm.nodes import Nodes, on_node
from parallax_docker.backends.swarm.translate import AGENT_LABEL, SERVICE_LABEL, TMPFS_LABEL
from parallax_docker.errors import (
    NotFoundError,
    ParallaxError,
    PlacementConflictError,
    VolumeInUseError,
)

log = logging.getLogger(__name__)


class SwarmVolumes:
    def __init__(self, nodes: Nodes, api: SwarmAPI) -> None:
        self._nodes = nodes
        self._api = api
        # Placing volumes is read-then-create: one placement at a time, so that two agents of
        # a new execution do not make its home on two nodes.
        self._placing = asyncio.Lock()

    async def _reachable(self) -> list[NodeInfo]:
        return [node for node in await self._nodes.list() if node.state == "ready"]

    async def _inspect(self, node: NodeInfo, name: str) -> VolumeInfo | None:
        try:
            async with on_node(node), engine_call("volume", "inspect", name):
                found = await self._nodes.engine(node).volumes.inspect(name)
        except NotFoundError:
            return None
        return docker_translate.volume_info(found)

    async def holders(self, name: str) -> builtins.list[tuple[NodeInfo, VolumeInfo]]:
        nodes = await self._reachable()
        found = await asyncio.gather(*(self._inspect(node, name) for node in nodes))
        return [(node, info) for node, info in zip(nodes, found, strict=True) if info is not None]

    async def get(self, name: str) -> VolumeInfo | None:
        held = await self.holders(name)
        return held[0][1] if held else None

    async def list(
        self, labels: Mapping[str, str], unused_only: bool = False
    ) -> builtins.list[VolumeInfo]:
        extra = {"dangling": ["true"]} if unused_only else {}
        seen: dict[str, VolumeInfo] = {}
        for node in await self._reachable():
            try:
                async with on_node(node), engine_call("volume", "list"):
                    found = await self._nodes.engine(node).volumes.list(
                        label_filters(labels, **extra)
                    )
            except ParallaxError:
                continue  # a node that does not answer now is read at the next call
            for volume in found:
                info = docker_translate.volume_info(volume)
                seen.setdefault(info.name, info)
        return sorted(seen.values(), key=lambda v: v.name)

    async def remove(self, name: str) -> None:
        """Remove it from every node that holds it (VolumeInUseError while a container has it).

        A removed service's containers go a moment after it (the node reaps its tasks): those
        are removed here rather than taken for users of the volume.
        """
        for node, _ in await self.holders(name):
            engine = self._nodes.engine(node)
            try:
                async with on_node(node), idempotent_call("volume", "remove", name):
                    await engine.volumes.remove(name)
            except VolumeInUseError:
                if not await self._reap_orphans(node, name):
                    raise
                async with on_node(node), idempotent_call("volume", "remove", name):
                    await engine.volumes.remove(name)

    async def sweep_tmpfs(self, agent_id: str) -> None:
        """Remove the agent's tmpfs volumes that no container holds, from every node.

        A node makes a volume that a mount describes with driver options twice: once before the
        task's container (never mounted) and once with it (removed with the container). The
        first would stay behind; a node that does not answer now is left to ``gc``, which
        takes unused volumes of the runtime's."""
        wanted = filters(label=[TMPFS_LABEL, f"{AGENT_LABEL}={agent_id}"], dangling=["true"])
        for node in await self._reachable():
            engine = self._nodes.engine(node)
            try:
                async with on_node(node), engine_call("volume", "list"):
                    unused = await engine.volumes.list(wanted)
                for volume in unused:
                    name = str(volume.get("Name"))
                    async with on_node(node), idempotent_call("volume", "remove", name[:12]):
                        await engine.volumes.remove(name)
            except ParallaxError as exc:
                log.debug("tmpfs volumes of %s on %s left to gc: %s", agent_id, node.name, exc.code)

    async def _reap_orphans(self, node: NodeInfo, volume: str) -> bool:
        """Remove the containers on ``node`` that hold ``volume`` for services that no longer
        exist; False when a live one holds it."""
        engine = self._nodes.engine(node)
        async with on_node(node), engine_call("container", "list"):
            holders = await engine.containers.list(filters(volume=[volume]))
        async with engine_call("service", "list"):
            alive = {str(s.get("ID")) for s in await self._api.services(filters())}
        services = [(c.get("Labels") or {}).get(SERVICE_LABEL) for c in holders]
        if any(service is None or service in alive for service in services):
            return False
        for container in holders:
            async with on_node(node), idempotent_call("container", "remove", volume):
                await engine.containers.remove(str(container["Id"]))
        return True

    async def pin(self, spec: ContainerSpec, manager_id: str) -> builtins.list[str]:
        """The placement constraints that put ``spec`` with its volumes (and host paths)."""
        volumes = [m for m in spec.mounts if m.kind == "volume"]
        binds = any(m.kind == "bind" for m in spec.mounts)
        if not volumes and not binds:
            return []
        async with self._placing:
            wanted: dict[str, str] = {}  # node id -> why
            if binds:
                wanted[manager_id] = "host paths"
            missing = []
            for mount in volumes:
                held = await self.holders(mount.source)
                if len(held) > 1:
                    where = ", ".join(node.name for node, _ in held)
                    raise PlacementConflictError(
                        f"volume {mount.source!r} exists on several nodes ({where})"
                    )
                if held:
                    wanted.setdefault(held[0][0].id, f"volume {mount.source!r}")
                else:
                    missing.append(mount)
            if len(wanted) > 1:
                raise PlacementConflictError(
                    "the agent's volumes and host paths live on different nodes: "
                    + ", ".join(sorted(wanted.values()))
                )
            node = await self._choose(next(iter(wanted), None))
            for mount in missing:
                async with on_node(node), engine_call("volume", "create", mount.source):
                    await self._nodes.engine(node).client.json(
                        "POST",
                        "volumes/create",
                        body={"Name": mount.source, "Labels": dict(mount.volume_labels)},
                    )
            return [f"node.id=={node.id}"]

    async def _choose(self, pinned: str | None) -> NodeInfo:
        nodes = {node.id: node for node in await self._nodes.list(fresh=True)}
        if pinned is not None:
            node = nodes.get(pinned)
            if node is None or not node.schedulable:
                name = node.name if node is not None else pinned
                raise PlacementConflictError(
                    f"node {name}, which holds the agent's volumes, does not take agents now"
                )
            return node
        usable = [node for node in nodes.values() if node.schedulable]
        if not usable:
            raise PlacementConflictError("no node takes agents now")
        async with engine_call("task", "list"):
            running = await self._api.tasks(filters(**{"desired-state": ["running"]}))
        load = {node.id: 0 for node in usable}
        for task in running:
            if task.get("NodeID") in load:
                load[str(task["NodeID"])] += 1
        return min(usable, key=lambda node: (load[node.id], node.name))
