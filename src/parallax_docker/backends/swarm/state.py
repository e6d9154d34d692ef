"""An agent's observed state on a Swarm: its service, the service's latest task, the task's node
and (when that node answers) the task's container, as one ContainerState. Pure functions.

The ContainerState's ``id`` is the service's: it stays the agent's across restarts, each of
which is a new task with a new container, possibly on another node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from parallax_docker.backends.base import ContainerState, NodeInfo
from parallax_docker.backends.docker import translate as docker_translate

# Task states once its container has ended by itself, or never came.
EXITED = frozenset({"complete", "failed", "rejected"})
ENDED = EXITED | {"shutdown", "orphaned", "remove"}
# Task states with a container that runs ("starting": its health check has not passed yet).
RUNNING = frozenset({"starting", "running"})


@dataclass(frozen=True)
class Placement:
    """Where an agent's current task runs: the node and the container there."""

    service_id: str
    task_id: str
    node_id: str | None
    container_id: str | None
    state: str


def task_time(task: Mapping[str, Any]) -> str:
    return str(task.get("CreatedAt") or "")


def latest_task(tasks: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The service's current task: the one made last (earlier ones are its history)."""
    return max(
        tasks, key=lambda t: (task_time(t), (t.get("Version") or {}).get("Index", 0)), default=None
    )


def placement(service_id: str, task: Mapping[str, Any]) -> Placement:
    status = task.get("Status") or {}
    container = (status.get("ContainerStatus") or {}).get("ContainerID") or None
    return Placement(
        service_id=service_id,
        task_id=str(task.get("ID", "")),
        node_id=task.get("NodeID") or None,
        container_id=container,
        state=str(status.get("State") or "new"),
    )


def replicas(service: Mapping[str, Any]) -> int:
    mode = (service.get("Spec") or {}).get("Mode") or {}
    return int((mode.get("Replicated") or {}).get("Replicas") or 0)


def is_lost(service: Mapping[str, Any], task: Mapping[str, Any], node: NodeInfo | None) -> bool:
    """The platform took the agent's task away: its node is down, or drained.

    A task the runtime ended itself exited (complete or failed), or belongs to a service it
    scaled to nothing; one of a node that is gone, or that the orchestrator shut down while the
    agent was wanted (only a drain does that to the sole task of a service), is lost.
    """
    if replicas(service) == 0:
        return False
    status = task.get("Status") or {}
    state = str(status.get("State") or "new")
    if state in EXITED:
        return False
    if task.get("NodeID") and (node is None or node.state != "ready"):
        return True
    return state in ("shutdown", "orphaned") or str(task.get("DesiredState")) in (
        "shutdown",
        "remove",
    )


def _limits(service: Mapping[str, Any]) -> Mapping[str, Any]:
    template = (service.get("Spec") or {}).get("TaskTemplate") or {}
    return (template.get("Resources") or {}).get("Limits") or {}


def service_state(
    service: Mapping[str, Any],
    task: Mapping[str, Any] | None,
    node: NodeInfo | None,
    container: Mapping[str, Any] | None,
) -> ContainerState:
    """The agent's state from what the manager (and the task's node) report."""
    spec = service.get("Spec") or {}
    limits = _limits(service)
    labels = dict(spec.get("Labels") or {})
    image = str(((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", ""))
    base = ContainerState(
        id=str(service.get("ID", "")),
        name=str(spec.get("Name", "")),
        image=image,
        labels=labels,
        status="created",
        running=False,
        exit_code=None,
        oom_killed=False,
        health=None,
        created_at=service.get("CreatedAt"),
        started_at=None,
        finished_at=None,
        error=None,
        networks=(),
        memory_bytes=int(limits.get("MemoryBytes") or 0),
        nano_cpus=int(limits.get("NanoCPUs") or 0),
        pids_limit=int(limits.get("Pids") or 0),
        node=node.name if node is not None else None,
    )
    if task is None:
        return base
    status = task.get("Status") or {}
    state = str(status.get("State") or "new")
    if is_lost(service, task, node):
        where = node.name if node is not None else str(task.get("NodeID") or "?")
        why = "drained" if node is not None and node.state == "ready" else "down"
        return replace(
            base,
            status="exited",
            finished_at=status.get("Timestamp"),
            error=f"node {where} is {why}",
            lost=True,
        )
    if container is not None:
        seen = docker_translate.container_state(container)
        return replace(
            seen,
            id=base.id,
            name=base.name,
            image=image,
            labels=labels,
            created_at=base.created_at,
            node=base.node,
            memory_bytes=seen.memory_bytes or base.memory_bytes,
            nano_cpus=seen.nano_cpus or base.nano_cpus,
            pids_limit=seen.pids_limit or base.pids_limit,
        )
    if state in ENDED:
        code = (status.get("ContainerStatus") or {}).get("ExitCode")
        return replace(
            base,
            status="exited",
            exit_code=int(code) if code is not None else None,
            finished_at=status.get("Timestamp"),
            error=str(status.get("Err") or "") or None,
        )
    if state in RUNNING:
        # Placed and running, on a node that did not answer just now.
        return replace(base, status="running", running=True, started_at=status.get("Timestamp"))
    return base
