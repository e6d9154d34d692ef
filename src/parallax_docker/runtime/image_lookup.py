"""The image an agent runs, or IMAGE_NOT_FOUND with the command that builds it."""

from __future__ import annotations

from parallax_docker.backends.base import Backend, ImageInfo
from parallax_docker.errors import ImageNotFoundError
from parallax_docker.models import AgentType


async def require_image(backend: Backend, ref: str, agent_type: str, prefix: str) -> ImageInfo:
    image = await backend.get_image(ref)
    if image is None:
        build = "base" if agent_type == AgentType.CUSTOM else agent_type
        hint = (
            f"Build it: parallax-docker images build {build}"
            if ref.startswith(prefix)
            else f"Build or load the image {ref} first."
        )
        raise ImageNotFoundError(f"image {ref} is not built", resolution=hint)
    return image
