"""Execution resources: the volume that agents spawned with one ``executionId`` share.

Each such agent gets the runtime-managed volume ``parallax-exec-<executionId>`` as its home
directory (runtime/spec.py), so the CLIs' login state (``~/.claude``, ``~/.codex``,
``~/.gemini``, ...) written by one agent serves every agent of the execution. The volume, and
any named volume created for a request carrying that executionId, stays until
``DELETE /executions/{id}/resources`` removes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parallax_docker.errors import ExecutionInUseError, ExecutionNotFoundError, ParallaxError
from parallax_docker.resources import validate_name
from parallax_docker.volume_owner import RESERVED_PREFIX

if TYPE_CHECKING:  # runtime/spec.py imports this module, and the service imports spec
    from parallax_docker.runtime.service import AgentService

EXECUTION_LABEL = "parallax.execution.id"
HOME_VOLUME_PREFIX = f"{RESERVED_PREFIX}exec-"


def home_volume(execution_id: str, instance: str) -> str:
    """The execution's shared home volume; its name carries the instance unless default."""
    scope = "" if instance == "default" else f"{instance}-"
    return f"{HOME_VOLUME_PREFIX}{scope}{execution_id}"


async def remove_execution_resources(service: AgentService, execution_id: str) -> list[str]:
    """Remove every volume of the execution; the names removed.

    Refused with 409 ``EXECUTION_IN_USE`` while any agent of the execution exists (running or
    exited: its container still holds the volume), 404 ``EXECUTION_NOT_FOUND`` when there is
    nothing to remove.
    """
    validate_name("executionId", execution_id)
    service.require_engine()
    holders = sorted(r.id for r in service.registry if r.labels.execution_id == execution_id)
    if holders:
        raise ExecutionInUseError(
            f"execution {execution_id!r} still has {len(holders)} agent(s): "
            + ", ".join(holders[:10])
        )
    labels = {**service.selector, EXECUTION_LABEL: execution_id}
    volumes = sorted(v.name for v in await service.backend.list_volumes(labels))
    if not volumes:
        raise ExecutionNotFoundError(f"execution {execution_id!r} has no resources")
    removed: list[str] = []
    for name in volumes:
        try:
            await service.backend.remove_volume(name)
        except ParallaxError as exc:
            if exc.http_status == 409:
                raise ExecutionInUseError(
                    f"volume {name} of execution {execution_id!r} is still in use by a container"
                ) from exc
            raise
        removed.append(name)
    return removed
