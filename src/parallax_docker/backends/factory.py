"""Chooses the Backend for the settings: the one place that names a concrete backend."""

from __future__ import annotations

from parallax_docker.backends.base import Backend
from parallax_docker.config import Settings


def create_backend(settings: Settings) -> Backend:
    from parallax_docker.backends.docker.engine import DockerBackend

    return DockerBackend(
        settings.docker_socket,
        request_timeout_s=settings.engine_timeout_s,
        connect_timeout_s=settings.engine_connect_timeout_s,
        cgroup_root=settings.cgroup_root,
    )
