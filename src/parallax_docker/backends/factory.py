"""Chooses the Deployment for the settings: the one place that names a concrete platform."""

from __future__ import annotations

from parallax_docker.backends.capabilities import Deployment
from parallax_docker.config import Settings


def create_deployment(settings: Settings) -> Deployment:
    """The platform the settings name: one Docker engine on ``DOCKER_SOCKET`` (the default), or
    a Docker Swarm cluster through the manager engine there (``PARALLAX_BACKEND=swarm``).

    Nothing connects until the first call, so this is safe outside a running event loop.
    """
    if settings.backend == "swarm":
        from parallax_docker.backends.swarm.deployment import SwarmDeployment

        return SwarmDeployment.from_settings(settings)

    from parallax_docker.backends.docker.deployment import DockerDeployment

    return DockerDeployment(
        settings.docker_socket,
        secrets_dir=settings.secrets_dir,
        request_timeout_s=settings.engine_timeout_s,
        connect_timeout_s=settings.engine_connect_timeout_s,
        cgroup_root=settings.cgroup_root,
    )
