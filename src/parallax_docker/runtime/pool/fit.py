"""The warm pool's rules: which spawns a pooled container can serve, and what a pooled one is.

Pure functions over plans and settings. A pooled container is an agent of its type with the
type's default settings (image, limits, the default network, the runtime's hardening) and no
env; a spawn that needs nothing it lacks may claim it (see ``unfit_reason``).
"""

from __future__ import annotations

from dataclasses import replace

from parallax_docker.backends.base import ContainerSpec, ImageInfo
from parallax_docker.config import Settings
from parallax_docker.models import AgentType, SpawnRequest
from parallax_docker.pool_config import PoolSize
from parallax_docker.run_as import RunAs
from parallax_docker.runtime.labels import selector
from parallax_docker.runtime.spec import PlannedAgent, container_spec, plan_agent

POOL = "parallax.pool"
POOL_TYPE = "parallax.pool.type"
POOL_SLOT = "parallax.pool.slot"
SLOT_PREFIX = "pool-"


def pool_image(settings: Settings, size: PoolSize) -> str:
    return size.image or settings.image_for(
        "base" if size.type == AgentType.CUSTOM else str(size.type)
    )


def unfit_reason(plan: PlannedAgent, settings: Settings, size: PoolSize | None) -> str | None:
    """Why a pooled container cannot serve ``plan`` (None: it can)."""
    if size is None or size.size == 0:
        return "no pool for this type"
    if plan.image != pool_image(settings, size):
        return "another image"
    if plan.mounts or plan.named_volumes:
        return "volumes"
    network = plan.network
    if network.is_none or network.internal or network.name != settings.docker_network:
        return "another network"
    if plan.command is not None:
        return "a command"
    if plan.labels.workdir is not None:
        return "a workdir"
    if plan.labels.user_labels:
        return "labels"
    if plan.labels.execution_id is not None:
        return "an execution"
    if plan.runtime != settings.runtime:
        return "another runtime"
    return None


def template_plan(size: PoolSize, settings: Settings, slot: str) -> PlannedAgent:
    """The plan of a pooled container: the type's defaults, no env, no extras."""
    name = f"{SLOT_PREFIX}{slot}"
    request = SpawnRequest.model_validate(
        {"id": name, "name": name, "type": size.type}
        | ({"image": size.image} if size.image else {})
    )
    # The host limits only matter for a request's own limits; the defaults always fit.
    return plan_agent(request, settings, host_memory=1 << 62, host_cpus=1 << 16)


def pool_container_name(slot: str) -> str:
    return f"parallax-{SLOT_PREFIX}{slot}"


def pool_spec(
    size: PoolSize,
    image: ImageInfo,
    settings: Settings,
    slot: str,
    run_as: RunAs,
    beating: bool,
) -> ContainerSpec:
    """The pooled container before the platform holds its process for a claim. ``beating``:
    its agent beats a heartbeat, whose channel the platform mounts under the slot's key."""
    plan = template_plan(size, settings, slot)
    return replace(
        container_spec(plan, image, settings, run_as=run_as, heartbeat=() if beating else None),
        name=pool_container_name(slot),
        labels={**selector(settings.instance), POOL: "true", POOL_TYPE: size.type, POOL_SLOT: slot},
        aliases=(),
    )
