"""Volumes the runtime makes for its own use, which a request can never mount by naming them.

An execution's home volume (runtime/executions.py) holds the CLIs' logins; it reaches an agent
only through that agent's ``executionId``. Such volumes are created with ``OWNER_LABEL`` and a
name starting with ``RESERVED_PREFIX``. A request's ``volumes`` entry is refused when it names a
volume carrying the label (runtime/volumes.py asks the engine) or a name with the prefix (here,
before the engine is asked): the label cannot be forged by naming a volume first, and the prefix
keeps a request from creating, ahead of the runtime, a volume that later becomes a home.
Volumes a request named are the requests' to share: any request may name them again.
"""

from __future__ import annotations

from parallax_docker.errors import VolumeForbiddenError

OWNER_LABEL = "parallax.volume.owner"
RUNTIME_OWNER = "runtime"
RESERVED_PREFIX = "parallax-"


def runtime_volume_labels() -> dict[str, str]:
    return {OWNER_LABEL: RUNTIME_OWNER}


def check_volume_name(name: str) -> None:
    """Refuse a request's volume name that belongs to the runtime's own volumes."""
    if name.startswith(RESERVED_PREFIX):
        raise VolumeForbiddenError(
            f"volume {name[:128]!r}: names starting with {RESERVED_PREFIX!r} are the runtime's "
            "own volumes",
            resolution="Reach an execution's home through its executionId; give your own "
            "volumes another name.",
        )


def runtime_owned(labels: dict[str, str]) -> bool:
    return OWNER_LABEL in labels
