"""SpawnRequest -> (AgentLabels, ContainerSpec): every default and policy decision in one place.

Validation that needs no engine happens here, so a bad request is refused before anything is
created. What needs the engine (image present, volume ownership) is the service's part.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from parallax_docker.backends.base import ContainerSpec, ImageInfo, MountSpec
from parallax_docker.backends.capabilities import SecretMounts
from parallax_docker.config import Settings
from parallax_docker.errors import ValidationError
from parallax_docker.models import MAX_ENV_ENTRIES, SpawnRequest
from parallax_docker.resources import (
    check_within_host,
    parse_cpu,
    parse_memory,
    parse_volume,
    validate_env_key,
    validate_name,
)
from parallax_docker.run_as import RunAs, plan_user
from parallax_docker.runtime.homes import home_mount, keeps_home
from parallax_docker.runtime.labels import (
    EXECUTION_LABEL,
    MANAGED,
    RESERVED_PREFIX,
    THREAD_PREFIX,
    AgentLabels,
    container_name,
    home_volume,
    selector,
)
from parallax_docker.security import (
    AGENT_HOME,
    AGENT_WORKSPACE,
    NetworkChoice,
    check_image_ref,
    choose_network,
    choose_runtime,
    runtime_tmpfs,
    volume_mounts,
)
from parallax_docker.volume_owner import runtime_volume_labels


def new_agent_id() -> str:
    return f"agent-{secrets.token_hex(6)}"


@dataclass(frozen=True)
class PlannedAgent:
    """A validated request: what to label, where to attach, what to mount."""

    labels: AgentLabels
    image: str
    network: NetworkChoice
    mounts: tuple[MountSpec, ...]
    named_volumes: tuple[str, ...]
    command: tuple[str, ...] | None
    # Secret values: delivered by the platform's SecretDelivery, never in the container's Env.
    env: dict[str, str]
    runtime: str | None = None


def plan_agent(
    request: SpawnRequest,
    settings: Settings,
    *,
    host_memory: int,
    host_cpus: int,
    thread_labels: Mapping[str, str] | None = None,
) -> PlannedAgent:
    """Check a request against every rule that needs no engine call.

    ``thread_labels`` (keys under ``parallax.thread.``) go on the container of a thread's agent.
    """
    agent_id = request.id or new_agent_id()
    validate_name("id", agent_id)
    validate_name("name", request.name)
    if request.execution_id is not None:
        validate_name("executionId", request.execution_id)

    secret_env = request.secret_env()
    if len(secret_env) > MAX_ENV_ENTRIES:
        raise ValidationError(
            f"env and credentials hold {len(secret_env)} variables; at most {MAX_ENV_ENTRIES}"
        )
    for key, value in secret_env.items():
        validate_env_key(key)
        if "\x00" in value.get_secret_value():
            # Names only in the message: the value is a secret.
            raise ValidationError(f"env {key[:64]!r}: values cannot contain NUL bytes")

    for key in request.labels:
        if key.startswith(RESERVED_PREFIX) or key == MANAGED:
            raise ValidationError(
                f"label {key[:80]!r} uses the runtime's reserved prefix 'parallax.'",
                resolution="Choose label keys that do not start with 'parallax.'.",
            )

    resources = request.resources
    memory_bytes = (
        parse_memory(resources.memory)
        if resources and resources.memory is not None
        else settings.default_memory_bytes
    )
    nano_cpus = (
        parse_cpu(resources.cpu)
        if resources and resources.cpu is not None
        else settings.default_nano_cpus
    )
    check_within_host(memory_bytes, nano_cpus, host_memory, host_cpus)

    network = choose_network(request.network, settings.docker_network)
    parsed_volumes = [parse_volume(v) for v in request.volumes]
    volume_labels = selector(settings.instance)
    if request.execution_id:
        volume_labels[EXECUTION_LABEL] = request.execution_id
    mounts = volume_mounts(
        parsed_volumes,
        docker_socket=settings.docker_socket,
        allowed_roots=settings.allowed_host_paths,
        volume_labels=volume_labels,
        # The agents' secret env files, the store and the API token are never mounted.
        protected=(settings.secrets_dir, settings.state_dir),
    )
    if request.execution_id and AGENT_HOME not in {mount.target for mount in mounts}:
        # Agents of one execution share their home (the CLIs' login state) through a volume
        # that only their executionId reaches (volume_owner.py).
        home = home_volume(request.execution_id, settings.instance)
        home_labels = {**volume_labels, **runtime_volume_labels()}
        mounts.append(MountSpec("volume", AGENT_HOME, home, volume_labels=home_labels))

    if request.workdir is not None and not request.workdir.startswith("/"):
        raise ValidationError("workdir must be an absolute path inside the container")

    if request.image is not None:
        check_image_ref(request.image)
    image = request.image or settings.image_for(
        "base" if request.type == "custom" else request.type
    )
    runtime = choose_runtime(request.runtime, settings.runtime, settings.allowed_runtimes)
    command = _command(request.command)

    labels = AgentLabels(
        id=agent_id,
        name=request.name,
        type=request.type,
        image=image,
        network=network.name,
        memory_bytes=memory_bytes,
        nano_cpus=nano_cpus,
        pids_limit=settings.pids_limit,
        created_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        role=request.role,
        reports_to=request.reports_to,
        capabilities=tuple(request.capabilities),
        volumes=tuple(request.volumes),
        env_keys=tuple(sorted(secret_env)),
        workdir=request.workdir,
        execution_id=request.execution_id,
        auto_restart=request.auto_restart,
        idle_timeout=request.idle_timeout,
        timeout=resources.timeout if resources else None,
        user_labels=tuple(sorted(request.labels.items())),
        spec_hash=spec_hash(request),
        instance=settings.instance,
        thread_labels=_thread_labels(thread_labels or {}),
    )
    return PlannedAgent(
        labels=labels,
        image=image,
        network=network,
        mounts=tuple(mounts),
        named_volumes=tuple(m.source for m in mounts if m.kind == "volume"),
        command=command,
        env={key: value.get_secret_value() for key, value in secret_env.items()},
        runtime=runtime,
    )


def _thread_labels(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    if any(not key.startswith(THREAD_PREFIX) for key in labels):
        raise ValueError("thread labels must start with " + THREAD_PREFIX)
    return tuple(sorted(labels.items()))


def _command(command: list[str] | str | None) -> tuple[str, ...] | None:
    if command is None:
        return None
    if isinstance(command, str):
        # Split like a shell would, but never run a shell: no expansion, no substitution.
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise ValidationError(f"command cannot be split into arguments: {exc}") from None
    else:
        argv = list(command)
    if not argv or not argv[0]:
        raise ValidationError("command must name a program")
    if any("\x00" in arg for arg in argv):
        raise ValidationError("command arguments cannot contain NUL bytes")
    return tuple(argv)


def spec_hash(request: SpawnRequest) -> str:
    """A digest of the request's non-secret fields plus the secret *names* (for idempotency)."""
    public = request.model_dump(mode="json", by_alias=True, exclude={"env", "credentials", "id"})
    public["envKeys"] = sorted(request.secret_env())
    encoded = json.dumps(public, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()[:16]


def health_probe(image: ImageInfo) -> tuple[str, ...] | None:
    """The argv of the image's HEALTHCHECK, to probe readiness without Docker's cadence."""
    test = image.healthcheck
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return tuple(test[1:]) or None
    if test[0] == "CMD-SHELL":
        return ("/bin/sh", "-c", " ".join(test[1:]))
    return None


def container_spec(
    plan: PlannedAgent,
    image: ImageInfo,
    settings: Settings,
    secrets: SecretMounts | None = None,
    run_as: RunAs | None = None,
    heartbeat: tuple[MountSpec, ...] | None = None,
) -> ContainerSpec:
    """The container for ``plan``; secret env arrives only through ``secrets``' mounts.

    ``heartbeat``: the agent beats a heartbeat (runtime/heartbeat.py) through these mounts (none
    when the platform mounts its channel itself): the image's Docker health check is switched
    off and the entrypoint told the beat's interval. None: the image's health check stands.
    """
    aliases = tuple(
        dict.fromkeys((plan.labels.name, container_name(plan.labels.id), plan.labels.id))
    )
    mounts = plan.mounts
    if keeps_home(plan.labels.type, image, mounts):
        mounts += (home_mount(selector(settings.instance)),)
    # A request's mount at /workspace or the home directory replaces the runtime's tmpfs there
    # (Docker would mount the tmpfs over it and hide it); so does an agent's home volume.
    targets = {mount.target for mount in mounts}
    if run_as is None:
        run_as = plan_user(image.user, allow_root=settings.allow_root)
    tmpfs = {
        path: options
        for path, options in runtime_tmpfs(run_as, settings.tmpfs_size).items()
        if path not in targets
    }
    command = plan.command
    entrypoint = None
    beat_env = (
        {} if heartbeat is None else {"PARALLAX_HEARTBEAT_S": f"{settings.heartbeat_interval_s}"}
    )
    if secrets is not None and secrets.entrypoint is not None:
        entrypoint, command = secrets.entrypoint, secrets.command
    return ContainerSpec(
        name=container_name(plan.labels.id),
        image=plan.image,
        labels=plan.labels.encode(),
        network=plan.network.name,
        aliases=aliases,
        memory_bytes=plan.labels.memory_bytes,
        nano_cpus=plan.labels.nano_cpus,
        pids_limit=plan.labels.pids_limit,
        command=command,
        entrypoint=entrypoint,
        workdir=plan.labels.workdir or AGENT_WORKSPACE,
        user=run_as.user,
        mounts=mounts + (secrets.mounts if secrets is not None else ()) + (heartbeat or ()),
        tmpfs=tmpfs,
        env=beat_env,
        image_healthcheck=heartbeat is None,
        runtime=plan.runtime,
        log_max_size=settings.log_max_size,
        log_max_files=settings.log_max_files,
        stop_timeout_s=int(settings.stop_grace_s),
    )
