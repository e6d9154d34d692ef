"""Service settings, read once from the environment at start-up.

The five names the product spec documents (``PORT``, ``DOCKER_SOCKET``, ``DOCKER_NETWORK``,
``DEFAULT_MEMORY``, ``DEFAULT_CPU``) plus ``HOST`` and ``LOG_LEVEL`` are read bare, as the spec
shows them; every other setting carries the ``PARALLAX_`` prefix so that a typo in one of them
(an unknown ``PARALLAX_*`` variable) can be refused instead of silently ignored.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from parallax_docker.errors import ConfigError, ParallaxError
from parallax_docker.gateway_settings import GatewaySettings
from parallax_docker.origins import host_entry, parse_origin
from parallax_docker.platform_config import PlatformSettings
from parallax_docker.pool_config import PoolSize, parse_pool
from parallax_docker.resources import parse_cpu, parse_memory
from parallax_docker.token_file import AUTO_TOKEN, DEFAULT_STATE_DIR

ENV_PREFIX = "PARALLAX_"
# A container runtime's name as the engine registers it (runc, runsc, io.containerd.runc.v2).
RUNTIME_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
MIN_TOKEN_LENGTH = 16
_TOKEN_RE = re.compile(rf"^[\x21-\x7e]{{{MIN_TOKEN_LENGTH},512}}\Z")

# Bare names from the product spec; everything else is PARALLAX_<FIELD>.
_BARE_NAMES: dict[str, str] = {
    "port": "PORT",
    "host": "HOST",
    "docker_socket": "DOCKER_SOCKET",
    "docker_network": "DOCKER_NETWORK",
    "default_memory": "DEFAULT_MEMORY",
    "default_cpu": "DEFAULT_CPU",
    "log_level": "LOG_LEVEL",
}


_FAILPOINT_RE = re.compile(
    r"^(?P<point>[a-z]+\.[a-z]+)(?:@(?P<count>[1-9][0-9]{0,3}))?(?::(?P<pause>[1-9][0-9]?)s)?\Z"
)


class Settings(GatewaySettings, PlatformSettings):
    """Everything the service can be told. See docs/configuration.md for each entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    port: int = Field(3200, ge=1, le=65535)
    host: str = Field("127.0.0.1", min_length=1)
    docker_socket: str = Field("/var/run/docker.sock")
    docker_network: str = Field("parallax-agents", min_length=1, max_length=128)
    default_memory: str = Field("512m")
    default_cpu: str = Field("0.5")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO")

    image_prefix: str = Field("parallax/agent-")
    image_tag: str = Field("latest", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
    # Host directories that bind mounts may come from (read-write ones only from these; empty:
    # no read-write host mount, read-only ones anywhere the policy allows; docs/security.md).
    allowed_host_paths: tuple[Path, ...] = Field(())
    # Names besides the loopback ones that requests may carry in Host, and web page origins
    # that may call the API from a browser (api/guard.py).
    allowed_hosts: tuple[str, ...] = Field(())
    allowed_origins: tuple[str, ...] = Field(())
    # Let an image whose user is root run as root (otherwise it runs as NONROOT_UID).
    allow_root: bool = False
    pids_limit: int = Field(512, ge=16, le=65536)
    log_max_size: str = Field("10m", pattern=r"^[0-9]+[kmg]$")
    log_max_files: int = Field(3, ge=1, le=100)
    tmpfs_size: str = Field("256m")
    ready_timeout_s: float = Field(60.0, gt=0, le=3600)
    stop_grace_s: float = Field(10.0, ge=0, le=600)
    engine_timeout_s: float = Field(30.0, gt=0, le=600)
    engine_connect_timeout_s: float = Field(3.0, gt=0, le=60)
    # Where the host's cgroup filesystem is mounted: agent metrics are read from it directly
    # (docs/benchmarks.md). Empty: always ask the engine for stats.
    cgroup_root: Path | None = Field(Path("/sys/fs/cgroup"))
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Admission (runtime/admission.py): "available" admits memory against what the host really
    # has (less a reserve and a share of the running agents' limits to grow into) and CPU not at
    # all; "limits" sums limits against the host times the overcommits.
    admission: Literal["available", "limits"] = Field("available")
    memory_reserve: str = Field("1g")
    memory_headroom_share: float = Field(0.1, ge=0, le=1)
    memory_overcommit: float = Field(1.0, gt=0, le=100)
    cpu_overcommit: float = Field(4.0, gt=0, le=1000)
    # Lifecycle housekeeping.
    janitor_interval_s: float = Field(1.0, gt=0, le=3600)
    # How often an agent whose image beats a heartbeat says it is well (runtime/heartbeat.py).
    heartbeat_interval_s: int = Field(5, ge=1, le=60)
    orphan_grace_s: float = Field(30.0, ge=0, le=86400)
    network_grace_s: float = Field(60.0, ge=0, le=86400)
    exited_retention_s: float = Field(300.0, ge=0, le=30 * 86400)
    auto_restart_max: int = Field(5, ge=0, le=1000)
    auto_restart_window_s: float = Field(600.0, gt=0, le=86400)
    auto_restart_backoff_max_s: float = Field(60.0, ge=0, le=3600)
    stop_agents_on_exit: bool = False
    # Several runtimes may share one engine; each manages only containers, networks and
    # volumes labelled with its own instance name.
    instance: str = Field("default", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
    # Security (docs/security.md): the API token, where secret env files live, the container
    # runtime every agent gets and the ones a request may pick.
    api_token: SecretStr | None = Field(None)
    secrets_dir: Path = Field(Path("/run/parallax-docker/secrets"))
    runtime: str | None = Field(None, pattern=RUNTIME_NAME_PATTERN)
    allowed_runtimes: tuple[str, ...] = Field(())
    # Talking to agents (docs/messaging.md): where conversations, events and CLI session ids
    # are kept, and the default bound on one turn.
    state_dir: Path = Field(DEFAULT_STATE_DIR)
    turn_timeout_s: float = Field(600.0, gt=0, le=24 * 3600)
    # Files, workspace diffs and previews (docs/files.md).
    max_upload_bytes: int = Field(4 * 1024**3, ge=1024, le=1024**4)
    max_download_bytes: int = Field(4 * 1024**3, ge=1024, le=1024**4)
    max_diff_bytes: int = Field(8 * 1024 * 1024, ge=1024, le=1024**3)
    preview_ttl_s: float = Field(8 * 3600.0, ge=60, le=30 * 86400)
    # Warm pool (docs/pool.md): pre-started containers per agent type, "TYPE[=IMAGE]:COUNT,...".
    pool: tuple[PoolSize, ...] = Field(())
    # For crash tests only (docs/reliability.md): "KIND.STEP[@N][:Ss],..." kills the service with
    # SIGKILL (or, with ":Ss", freezes it S seconds) at the Nth time (default 1st) an operation
    # records that step in its journal.
    failpoints: tuple[tuple[str, int, int], ...] = Field(())

    @field_validator("default_memory", "tmpfs_size", "memory_reserve")
    @classmethod
    def _memory_parses(cls, value: str) -> str:
        _as_value_error(parse_memory, value)
        return value

    @field_validator("default_cpu", mode="before")
    @classmethod
    def _cpu_parses(cls, value: Any) -> str:
        _as_value_error(parse_cpu, value)
        return str(value)

    @field_validator("api_token", mode="before")
    @classmethod
    def _token_is_strong(cls, value: Any) -> Any:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and not _TOKEN_RE.match(text):
            # Never the value itself: it is a secret.
            raise ValueError(
                f"the API token must be {MIN_TOKEN_LENGTH} to 512 printable ASCII characters "
                "without spaces"
            )
        return value

    @field_validator("secrets_dir", "state_dir")
    @classmethod
    def _secrets_dir_absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError(f"{value} is not an absolute path")
        return value

    @field_validator("pool", mode="before")
    @classmethod
    def _parse_pool(cls, value: Any) -> Any:
        return parse_pool(value) if isinstance(value, str) else value

    @field_validator("pool")
    @classmethod
    def _one_pool_per_type(cls, value: tuple[PoolSize, ...]) -> tuple[PoolSize, ...]:
        types = [entry.type for entry in value]
        for agent_type in types:
            if types.count(agent_type) > 1:
                raise ValueError(f"the pool names type {agent_type!r} more than once")
        return value

    @field_validator("failpoints", mode="before")
    @classmethod
    def _parse_failpoints(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        points: list[tuple[str, int, int]] = []
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            match = _FAILPOINT_RE.match(part)
            if match is None:
                raise ValueError(f"{part[:64]!r} is not KIND.STEP[@N][:Ss]")
            points.append((match["point"], int(match["count"] or 1), int(match["pause"] or 0)))
        return tuple(points)

    @field_validator("cgroup_root", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("cgroup_root")
    @classmethod
    def _cgroup_root_absolute(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError(f"{value} is not an absolute path")
        return value

    @field_validator("allowed_runtimes", mode="before")
    @classmethod
    def _split_runtimes(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allowed_runtimes")
    @classmethod
    def _runtime_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not re.match(RUNTIME_NAME_PATTERN, name):
                raise ValueError(f"{name[:64]!r} is not a runtime name")
        return value

    @field_validator("allowed_host_paths", "allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _split_paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if host_entry(name) is None:
                raise ValueError(f"{name[:80]!r} is not a host name or address")
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if parse_origin(origin) is None:
                # "*" and "null" too: every page, or any sandboxed or file: page, is no origin.
                raise ValueError(
                    f"{origin[:80]!r} is not an origin: give scheme://host[:port], such as "
                    "http://localhost:5173"
                )
        return value

    @field_validator("allowed_host_paths")
    @classmethod
    def _absolute_paths(cls, value: tuple[Path, ...]) -> tuple[Path, ...]:
        for path in value:
            if not path.is_absolute():
                raise ValueError(f"{path} is not an absolute path")
        return tuple(Path(os.path.realpath(p)) for p in value)

    @model_validator(mode="after")
    def _socket_is_path(self) -> Settings:
        if not self.docker_socket.startswith("/"):
            raise ValueError("DOCKER_SOCKET must be an absolute path to a Unix socket")
        return self

    @property
    def default_memory_bytes(self) -> int:
        return parse_memory(self.default_memory)

    @property
    def default_nano_cpus(self) -> int:
        return parse_cpu(self.default_cpu)

    def image_for(self, agent_type: str) -> str:
        return f"{self.image_prefix}{agent_type}:{self.image_tag}"


def _as_value_error(parse: Callable[[Any], int], value: Any) -> None:
    # pydantic reports ValueErrors per field; a project error would escape it unnamed.
    try:
        parse(value)
    except ParallaxError as exc:
        raise ValueError(exc.message) from None


def _known_prefixed_names() -> set[str]:
    return {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build the settings from ``environ`` (default: the process environment).

    Raises ConfigError naming every unknown ``PARALLAX_*`` variable and every invalid value, so
    that a mistyped setting stops the service at start-up instead of being ignored.
    """
    env = dict(os.environ if environ is None else environ)
    unknown = sorted(
        key for key in env if key.startswith(ENV_PREFIX) and key not in _known_prefixed_names()
    )
    if unknown:
        raise ConfigError(
            f"unknown setting(s): {', '.join(unknown)}",
            resolution="See docs/configuration.md for the settings the service knows.",
        )
    values: dict[str, Any] = {}
    for field in Settings.model_fields:
        for name in (_BARE_NAMES.get(field), ENV_PREFIX + field.upper()):
            if name and name in env:
                values[field] = env[name]
    if values.get("api_token") == AUTO_TOKEN:
        # "auto" names no token: `serve` makes or reads the one in the state directory
        # (token_file.py) and passes it in; other commands only look at that file.
        del values["api_token"]
    values.update(overrides)
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_env_name(str(err['loc'][0]) if err['loc'] else '?')}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(
            f"invalid setting(s): {problems}",
            resolution="Fix the value in the environment; docs/configuration.md lists each one.",
        ) from None


def _env_name(field: str) -> str:
    return _BARE_NAMES.get(field, ENV_PREFIX + field.upper())


def is_loopback_host(host: str) -> bool:
    """True when ``host`` can only be reached from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        # A host name other than localhost may resolve to anything: not provably loopback.
        return False


def check_exposure(settings: Settings, *, insecure: bool) -> None:
    """Refuse to serve a non-loopback address without an API token, unless told to."""
    if settings.api_token is None and not insecure and not is_loopback_host(settings.host):
        raise ConfigError(
            f"refusing to listen on {settings.host} without an API token: anyone who can reach "
            "it could run containers on this host",
            resolution="Set PARALLAX_API_TOKEN (or --token-file), bind to 127.0.0.1, or pass "
            "--insecure if another layer guards the port.",
        )


def read_token_file(path: Path) -> str:
    """The API token from a file (one line; surrounding whitespace ignored)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII text"
        raise ConfigError(
            f"cannot read the token file {path} ({reason})",
            resolution="Point --token-file at a readable file holding the token.",
        ) from None
    if not text:
        raise ConfigError(
            f"the token file {path} is empty",
            resolution="Write the token into the file (16 or more printable characters).",
        )
    return text
