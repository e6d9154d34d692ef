"""Container labels: the source of truth that rebuilds an agent handle after any restart.

Everything the handle shows, except secret values, is written into ``parallax.agent.*`` labels at
create time, so that a service that lost its memory can serve the agent again from
``docker inspect`` alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from parallax_docker.backends.base import ContainerState
from parallax_docker.models import (
    AgentHandle,
    AgentStatus,
    AppliedResources,
    Budget,
    Egress,
    EgressAllow,
)
from parallax_docker.resources import NANO, format_bytes
from parallax_docker.volume_owner import RESERVED_PREFIX as RESERVED_VOLUME_PREFIX

MANAGED = "parallax.managed"
INSTANCE = "parallax.instance"
PREFIX = "parallax.agent."
RESERVED_PREFIX = "parallax."
SCHEMA_VERSION = "1"
# A thread's facts on its agent's container (runtime/threads/labels.py writes and reads them).
THREAD_PREFIX = "parallax.thread."


# Agents spawned with one executionId share their home through a runtime-managed volume.
EXECUTION_LABEL = "parallax.execution.id"
HOME_VOLUME_PREFIX = f"{RESERVED_VOLUME_PREFIX}exec-"


def home_volume(execution_id: str, instance: str) -> str:
    """The execution's shared home volume; its name carries the instance unless default."""
    scope = "" if instance == "default" else f"{instance}-"
    return f"{HOME_VOLUME_PREFIX}{scope}{execution_id}"


def selector(instance: str) -> dict[str, str]:
    """The labels that mark what one runtime instance manages."""
    return {MANAGED: "true", INSTANCE: instance}


def container_name(agent_id: str) -> str:
    return f"parallax-{agent_id}"


@dataclass(frozen=True)
class AgentLabels:
    """The non-secret facts about an agent that its container carries."""

    id: str
    name: str
    type: str
    image: str
    network: str
    memory_bytes: int
    nano_cpus: int
    pids_limit: int
    created_at: str
    role: str | None = None
    reports_to: str | None = None
    capabilities: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    env_keys: tuple[str, ...] = ()
    workdir: str | None = None
    execution_id: str | None = None
    auto_restart: bool = False
    idle_timeout: int | None = None
    timeout: int | None = None
    user_labels: tuple[tuple[str, str], ...] = ()
    spec_hash: str = ""
    instance: str = "default"
    # resources.budget as canonical JSON (the gateway's limits; docs/gateway.md).
    budget: str | None = None
    # The egress choice: "none", "models-only" or an allow-list as JSON (absent: open).
    egress: str | None = None
    # Labels under THREAD_PREFIX when the agent serves a thread (written and read as given).
    thread_labels: tuple[tuple[str, str], ...] = ()

    def encode(self) -> dict[str, str]:
        labels = dict(self.user_labels)
        labels.update(
            {
                MANAGED: "true",
                INSTANCE: self.instance,
                PREFIX + "schema": SCHEMA_VERSION,
                PREFIX + "id": self.id,
                PREFIX + "name": self.name,
                PREFIX + "type": self.type,
                PREFIX + "image": self.image,
                PREFIX + "network": self.network,
                PREFIX + "memory": str(self.memory_bytes),
                PREFIX + "cpu": str(self.nano_cpus),
                PREFIX + "pids": str(self.pids_limit),
                PREFIX + "created-at": self.created_at,
                PREFIX + "capabilities": json.dumps(list(self.capabilities)),
                PREFIX + "volumes": json.dumps(list(self.volumes)),
                PREFIX + "env-keys": json.dumps(list(self.env_keys)),
                PREFIX + "user-labels": json.dumps([k for k, _ in self.user_labels]),
                PREFIX + "auto-restart": "true" if self.auto_restart else "false",
                PREFIX + "spec-hash": self.spec_hash,
            }
        )
        optional = {
            "role": self.role,
            "reports-to": self.reports_to,
            "workdir": self.workdir,
            "execution-id": self.execution_id,
            "idle-timeout": None if self.idle_timeout is None else str(self.idle_timeout),
            "timeout": None if self.timeout is None else str(self.timeout),
            "budget": self.budget,
            "egress": self.egress,
        }
        labels.update({PREFIX + key: value for key, value in optional.items() if value is not None})
        labels.update({k: v for k, v in self.thread_labels if k.startswith(THREAD_PREFIX)})
        return labels

    @classmethod
    def decode(cls, labels: Mapping[str, str]) -> AgentLabels | None:
        """None when the labels are not a managed agent's (or are damaged)."""
        if labels.get(MANAGED) != "true" or PREFIX + "id" not in labels:
            return None
        try:
            user_keys = json.loads(labels.get(PREFIX + "user-labels", "[]"))
            return cls(
                id=labels[PREFIX + "id"],
                name=labels.get(PREFIX + "name", labels[PREFIX + "id"]),
                type=labels.get(PREFIX + "type", "custom"),
                image=labels.get(PREFIX + "image", ""),
                network=labels.get(PREFIX + "network", ""),
                memory_bytes=int(labels.get(PREFIX + "memory", "0")),
                nano_cpus=int(labels.get(PREFIX + "cpu", "0")),
                pids_limit=int(labels.get(PREFIX + "pids", "0")),
                created_at=labels.get(PREFIX + "created-at", ""),
                role=labels.get(PREFIX + "role"),
                reports_to=labels.get(PREFIX + "reports-to"),
                capabilities=tuple(json.loads(labels.get(PREFIX + "capabilities", "[]"))),
                volumes=tuple(json.loads(labels.get(PREFIX + "volumes", "[]"))),
                env_keys=tuple(json.loads(labels.get(PREFIX + "env-keys", "[]"))),
                workdir=labels.get(PREFIX + "workdir"),
                execution_id=labels.get(PREFIX + "execution-id"),
                auto_restart=labels.get(PREFIX + "auto-restart") == "true",
                idle_timeout=_int_or_none(labels.get(PREFIX + "idle-timeout")),
                timeout=_int_or_none(labels.get(PREFIX + "timeout")),
                user_labels=tuple((k, labels[k]) for k in user_keys if k in labels),
                spec_hash=labels.get(PREFIX + "spec-hash", ""),
                instance=labels.get(INSTANCE, "default"),
                budget=labels.get(PREFIX + "budget"),
                egress=labels.get(PREFIX + "egress"),
                thread_labels=tuple(
                    sorted((k, v) for k, v in labels.items() if k.startswith(THREAD_PREFIX))
                ),
            )
        except (ValueError, TypeError):
            return None

    def handle(
        self,
        status: AgentStatus,
        state: ContainerState | None = None,
        error: str | None = None,
        error_code: str | None = None,
    ) -> AgentHandle:
        return AgentHandle(
            id=self.id,
            name=self.name,
            type=self.type,
            status=status,
            container_id=state.id if state else None,
            container_name=container_name(self.id),
            image=self.image,
            network=self.network,
            role=self.role,
            reports_to=self.reports_to,
            capabilities=list(self.capabilities),
            resources=AppliedResources(
                memory=format_bytes(self.memory_bytes),
                memory_bytes=self.memory_bytes,
                cpu=self.nano_cpus / NANO,
                nano_cpus=self.nano_cpus,
                timeout=self.timeout,
                pids_limit=self.pids_limit,
                budget=Budget.model_validate_json(self.budget) if self.budget else None,
            ),
            volumes=list(self.volumes),
            env_keys=list(self.env_keys),
            labels=dict(self.user_labels),
            workdir=self.workdir,
            execution_id=self.execution_id,
            auto_restart=self.auto_restart,
            idle_timeout=self.idle_timeout,
            created_at=self.created_at,
            started_at=state.started_at if state else None,
            finished_at=state.finished_at if state and not state.running else None,
            exit_code=state.exit_code if state else None,
            error=error,
            error_code=error_code,
            health=state.health if state else None,
            egress=decode_egress(self.egress),
            node=state.node if state else None,
        )


def encode_egress(egress: Egress) -> str | None:
    if isinstance(egress, EgressAllow):
        return egress.model_dump_json()
    return None if egress == "open" else egress


def decode_egress(label: str | None) -> Egress:
    if label in (None, "", "open"):
        return "open"
    if label == "none":
        return "none"
    if label == "models-only":
        return "models-only"
    try:
        return EgressAllow.model_validate_json(label or "")
    except ValueError:
        # A damaged label shows as the narrowest choice; the gateway refuses it everything.
        return "models-only"


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None
