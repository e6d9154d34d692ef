"""Named volumes a spawn mounts: refused when they exist but are not the request's to mount."""

from __future__ import annotations

from collections.abc import Iterable

from parallax_docker.backends.base import Backend, MountSpec
from parallax_docker.errors import VolumeForbiddenError
from parallax_docker.runtime.labels import MANAGED
from parallax_docker.volume_owner import runtime_owned


async def check_named_volumes(backend: Backend, mounts: Iterable[MountSpec]) -> None:
    """Each existing volume must be the runtime's; one a request named must not be its own.

    A mount the runtime added itself (an execution's home) carries the owner label in its
    ``volume_labels``; every other volume mount came from the request's ``volumes``.
    """
    for mount in mounts:
        if mount.kind != "volume":
            continue
        volume = await backend.get_volume(mount.source)
        if volume is None:
            continue  # the engine creates it, with mount.volume_labels
        labels = dict(volume.labels)
        if labels.get(MANAGED) != "true":
            raise VolumeForbiddenError(
                f"volume {mount.source!r} exists but is not managed by the runtime",
                resolution="Use a new volume name; the runtime creates and labels it.",
            )
        if runtime_owned(labels) and not runtime_owned(dict(mount.volume_labels)):
            raise VolumeForbiddenError(
                f"volume {mount.source!r} is the runtime's own (an execution's home)",
                resolution="Spawn the agent with that executionId to share the execution's home.",
            )
