"""A thread's facts on its agent's container (``parallax.thread.*``), so that a service that lost
its store still knows which agents serve threads, and of which execution.

The store keeps the rest (the objective, metadata, the thread's history); labels are what
survives anything.
"""

from __future__ import annotations

from collections.abc import Mapping

from parallax_docker.runtime.labels import THREAD_PREFIX, AgentLabels
from parallax_docker.runtime.threads.spec import ThreadSpec
from parallax_docker.thread_models import ApprovalPreset

ID = THREAD_PREFIX + "id"
EXECUTION = THREAD_PREFIX + "execution-id"
NAME = THREAD_PREFIX + "name"
PRESET = THREAD_PREFIX + "approval-preset"
CREATED = THREAD_PREFIX + "created-at"


def encode(spec: ThreadSpec) -> dict[str, str]:
    return {
        ID: spec.id,
        EXECUTION: spec.execution_id,
        NAME: spec.name,
        PRESET: spec.approval_preset.value,
        CREATED: f"{spec.created_at:.3f}",
    }


def thread_of(labels: AgentLabels) -> str | None:
    """The id of the thread the agent serves, if it serves one."""
    return dict(labels.thread_labels).get(ID)


def preset_of(labels: AgentLabels) -> ApprovalPreset:
    value = dict(labels.thread_labels).get(PRESET, ApprovalPreset.AUTONOMOUS.value)
    try:
        return ApprovalPreset(value)
    except ValueError:
        # An unknown preset on a container: the strictest one is the safe reading.
        return ApprovalPreset.READONLY


def decode(labels: AgentLabels) -> ThreadSpec | None:
    """The thread spec the agent's labels give (no objective: the store kept that)."""
    found: Mapping[str, str] = dict(labels.thread_labels)
    if found.get(ID) != labels.id or EXECUTION not in found:
        return None
    try:
        created = float(found.get(CREATED, "0"))
    except ValueError:
        created = 0.0
    return ThreadSpec(
        id=labels.id,
        execution_id=found[EXECUTION],
        name=found.get(NAME, labels.id),
        agent_type=labels.type,
        objective="",
        created_at=created,
        approval_preset=preset_of(labels),
        role=labels.role,
    )
