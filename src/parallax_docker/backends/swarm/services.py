"""An agent's lifecycle as a Swarm service: create, start, stop, kill, restart, remove.

``create`` makes the service with no replica (nothing runs yet), after the image is in the
cluster's registry, the volumes are placed and the secrets made; the manager's stored spec must
hold every setting sent. ``start`` asks for the one replica (or, when its task has ended, a new
task), waits until a node runs it and verifies the container there (placing.py): a container
that lacks any control is refused and the service removed. A stop goes to the node's engine
(the grace period as on one host); when that node is away, the service is scaled to nothing so
that the manager stops the task when it can. Swarm never restarts a task by itself (restart
policy none): the runtime's ``autoRestart`` decides.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from parallax_docker.backends.base import ContainerSpec
from parallax_docker.backends.docker.errors import engine_call, idempotent_call
from parallax_docker.backends.swarm import translate, verify
from parallax_docker.backends.swarm.engine import SwarmAPI
from parallax_docker.backends.swarm.networks import SwarmNetworks
from parallax_docker.backends.swarm.nodes import on_node
from parallax_docker.backends.swarm.placing import Placing
from parallax_docker.backends.swarm.readings import Readings
from parallax_docker.backends.swarm.registry import Registry
from parallax_docker.backends.swarm.secrets import SwarmSecrets
from parallax_docker.backends.swarm.state import ENDED, latest_task, replicas
from parallax_docker.backends.swarm.volumes import SwarmVolumes
from parallax_docker.errors import (
    AgentNotFoundError,
    AgentStateError,
    EngineError,
    InsecureSpawnError,
    ParallaxError,
)

log = logging.getLogger(__name__)

# An update names the service version it changes; another writer in between makes it fail.
_UPDATE_ATTEMPTS = 3


class Services:
    def __init__(
        self,
        *,
        api: SwarmAPI,
        readings: Readings,
        placing: Placing,
        secrets: SwarmSecrets,
        registry: Registry,
        networks: SwarmNetworks,
        volumes: SwarmVolumes,
        reservation: translate.Reservation,
        manager_id: Callable[[], str],
    ) -> None:
        self._api = api
        self._readings = readings
        self._placing = placing
        self._secrets = secrets
        self._registry = registry
        self._networks = networks
        self._volumes = volumes
        self._reservation = reservation
        self._manager_id = manager_id

    async def create(self, spec: ContainerSpec) -> str:
        image = await self._registry.resolve(spec.image)
        constraints = await self._volumes.pin(spec, self._manager_id())
        network = spec.network
        if network == "none":
            network = await self._networks.isolated(spec.name, translate.owner_labels(spec.labels))
        files = await self._secrets.materialize(spec)
        body = translate.service_spec(
            spec,
            image=image,
            network=network,
            secrets=files,
            constraints=constraints,
            reservation=self._reservation,
        )
        try:
            async with engine_call("service", "create", spec.name):
                service_id = await self._api.create_service(body)
        except BaseException:
            await asyncio.shield(self._secrets.discard(f.secret_id for f in files))
            raise
        try:
            stored = await self._readings.service(service_id)
            problems = verify.service_problems(body, (stored or {}).get("Spec") or {})
            if problems:
                raise verify.refuse(problems, "service")
        except BaseException:
            await asyncio.shield(self._discard(service_id))
            raise
        return service_id

    async def start(self, service_id: str) -> None:
        """Run the agent's task (nothing when one already runs or is on its way)."""
        service = await self._service(service_id)
        current = latest_task(await self._readings.tasks(service_id))
        if (
            current is not None
            and replicas(service) >= 1
            and (current.get("Status") or {}).get("State") not in ENDED
            and current.get("DesiredState") == "running"
        ):
            return  # under way already
        await self._place(service_id)

    async def restart(self, service_id: str, timeout_s: float) -> None:
        """Stop the agent's task, then run a new one (wherever the scheduler puts it)."""
        await self.stop(service_id, timeout_s)
        await self._place(service_id)

    async def _place(self, service_id: str) -> None:
        before = await self._placing.task_ids(service_id)
        service = await self._update(service_id, _one_more_task)
        where = await self._placing.wait(service_id, before)
        self._readings.note(where)
        try:
            await self._placing.verify(service, where)
        except InsecureSpawnError:
            await asyncio.shield(self._discard(service_id))
            raise
        agent = ((service.get("Spec") or {}).get("Labels") or {}).get(translate.AGENT_LABEL)
        if agent:
            self._secrets.settled(str(agent))

    async def stop(self, service_id: str, timeout_s: float) -> None:
        try:
            node, engine, container_id = await self._readings.placed(service_id, fresh=True)
        except AgentStateError:
            await self._update(service_id, _no_task)  # placed nowhere yet: never place it
            return
        if node.state != "ready":
            await self._update(service_id, _no_task)
            return
        try:
            async with on_node(node), idempotent_call("container", "stop", container_id[:12]):
                await engine.containers.stop(container_id, max(0, round(timeout_s)))
        except EngineError:
            log.warning("node %s did not stop agent service %s", node.name, service_id[:12])
            await self._update(service_id, _no_task)

    async def kill(self, service_id: str, signal: str) -> None:
        try:
            node, engine, container_id = await self._readings.placed(service_id, fresh=True)
        except AgentStateError:
            return
        async with on_node(node), idempotent_call("container", "kill", container_id[:12]):
            await engine.containers.kill(container_id, signal)

    async def remove(self, service_id: str) -> None:
        """Remove the service with its secrets (gone already: nothing happens)."""
        service = await self._readings.service(service_id)
        if service is None:
            return
        await self._discard(service_id, service)

    async def _discard(self, service_id: str, service: dict[str, Any] | None = None) -> None:
        service = service or await self._readings.service(service_id) or {}
        container = ((service.get("Spec") or {}).get("TaskTemplate") or {}).get(
            "ContainerSpec"
        ) or {}
        async with idempotent_call("service", "remove", service_id[:12]):
            await self._api.remove_service(service_id)
        self._readings.forget(service_id)
        agent = ((service.get("Spec") or {}).get("Labels") or {}).get(translate.AGENT_LABEL)
        if agent:
            await self._volumes.sweep_tmpfs(str(agent))
        await self._secrets.discard(str(s.get("SecretID")) for s in container.get("Secrets") or ())

    async def _service(self, service_id: str) -> dict[str, Any]:
        service = await self._readings.service(service_id)
        if service is None:
            raise AgentNotFoundError(f"service {service_id[:12]} does not exist")
        return service

    async def _update(
        self, service_id: str, change: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        """Apply ``change`` to the service's spec; read again and retry when another update
        came in between. The service as it was read."""
        for attempt in range(_UPDATE_ATTEMPTS):
            service = await self._service(service_id)
            spec = dict(service.get("Spec") or {})
            change(spec)
            version = int((service.get("Version") or {}).get("Index") or 0)
            try:
                async with engine_call("service", "update", service_id[:12]):
                    await self._api.update_service(service_id, version, spec)
                service["Spec"] = spec
                return service
            except ParallaxError:
                if attempt == _UPDATE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")


def _one_more_task(spec: dict[str, Any]) -> None:
    """One replica; a service that had it gets a new task (its last one has ended)."""
    mode = spec.setdefault("Mode", {}).setdefault("Replicated", {})
    if int(mode.get("Replicas") or 0) >= 1:
        template = spec.setdefault("TaskTemplate", {})
        template["ForceUpdate"] = int(template.get("ForceUpdate") or 0) + 1
    mode["Replicas"] = 1


def _no_task(spec: dict[str, Any]) -> None:
    spec.setdefault("Mode", {}).setdefault("Replicated", {})["Replicas"] = 0
