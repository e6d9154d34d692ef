"""The settings that choose the platform agents run on (docs/backends.md), with the Swarm's.

A base of ``config.Settings`` (which reads them from the environment like every other), kept
apart so that the one settings module stays small.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class PlatformSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # One Docker engine, or a Docker Swarm cluster through the manager engine on DOCKER_SOCKET
    # (docs/swarm.md).
    backend: Literal["docker", "swarm"] = "docker"
    # Swarm only: the folder with the CA and the client certificate that open the nodes'
    # engines (mutual TLS on swarm_engine_port), the registry nodes pull agent images from
    # (host:port), and how long a new task may wait for a node.
    swarm_tls_dir: Path | None = Field(None)
    swarm_engine_port: int = Field(2376, ge=1, le=65535)
    swarm_registry: str | None = Field(None, pattern=r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")
    swarm_placement_timeout_s: float = Field(60.0, gt=0, le=3600)

    @field_validator("swarm_tls_dir")
    @classmethod
    def _tls_dir_absolute(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError(f"{value} is not an absolute path")
        return value
