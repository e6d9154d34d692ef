"""Chooses the Deployment for the settings: the one place that names a concrete platform."""

from __future__ import annotations

from parallax_docker.backends.base import Deployment
from parallax_docker.config import Settings


def create_deployment(settings: Settings) -> Deployment:
    from parallax_docker.backends.docker.deployment import DockerDeployment

    return DockerDeployment.from_settings(settings)
