"""Warm start on Docker (the WarmStart capability): containers started ahead of time whose agent
process waits for a claim. The runtime keeps the pool's policy (runtime/pool/); this is only how
a container is held and let go on a Docker host.

A held container runs a small ``/bin/sh`` wrapper (``wait_script``) in front of the image's own
entrypoint and command: it sleeps in a blocking read of the ``go`` FIFO until a marker file,
``/run/parallax/claim/ready``, exists in a directory bind-mounted read-only from the host. Its
secret files (empty until then) are made by the secret store under the slot's key. A claim,
in order: moves the files to the agent's key and writes the agent's env into them in place (the
container has these very files mounted); then, concurrently, (a) sets the agent's limits (fail
closed on the engine's Warnings), creates the marker and writes ``go``, and waits for the
container's ``up`` on the other FIFO, which it writes once the image's readiness check passes;
(b) renames the container and re-joins its network with the agent's aliases (aliases can only
be given when joining). Docker's own HEALTHCHECK passes while the container waits, then is the
image's; an image that beats a heartbeat has none, and its heartbeat channel, made under the
slot's key, moves with the secret files. See docs/pool.md.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import stat
from dataclasses import replace
from pathlib import Path

from parallax_docker.backends.base import ContainerSpec, HealthProbe, ImageInfo, MountSpec
from parallax_docker.backends.capabilities import WarmClaim, WarmContainer, beats
from parallax_docker.backends.docker.backend import DockerBackend
from parallax_docker.backends.docker.engine import Engine
from parallax_docker.backends.docker.errors import engine_call, warnings_failure
from parallax_docker.backends.docker.heartbeat import DockerHeartbeats
from parallax_docker.backends.docker.secrets import (
    ENV_SH_TARGET,
    SecretStore,
    loads_env_itself,
)
from parallax_docker.errors import HealthCheckFailedError, ParallaxError, ValidationError

SLOT_KEY_PREFIX = "pool-"
CLAIM_DIR_NAME = "claim"
CLAIM_DIR_TARGET = "/run/parallax/claim"
# In the claim directory: the marker that the container was claimed (kept: a restarted agent
# skips the wait), the FIFO the service wakes the container on, the FIFO it answers on.
MARKER_NAME = "ready"
GO_NAME = "go"
UP_NAME = "up"
MARKER_TARGET = f"{CLAIM_DIR_TARGET}/{MARKER_NAME}"
# How long the container's announcer keeps trying the image's check (10 ms apart).
_ANNOUNCE_TRIES = 6000
HEALTH_WRAPPER: tuple[str, ...] = (
    "/bin/sh",
    "-c",
    f'test -e {MARKER_TARGET} || exit 0; exec "$@"',
    "sh",
)


def numeric_uid(user: str | None) -> int | None:
    """The uid of a container user given as ``uid[:gid]`` (None for a name: files are then made
    readable inside the private folder instead of owned by it)."""
    name = (user or "").partition(":")[0]
    return int(name) if name.isdigit() else None


def slot_key(slot: str) -> str:
    """The secrets key a warm container's files live under until a claim."""
    if not slot or not slot.isalnum():
        raise ValidationError("a warm container's slot must be letters and digits")
    return f"{SLOT_KEY_PREFIX}{slot}"


def wait_script(
    probe: tuple[str, ...] | None,
    load_env_sh: bool,
    *,
    claim_dir: str = CLAIM_DIR_TARGET,
    env_sh: str = ENV_SH_TARGET,
) -> str:
    """The held container's command: wait for the claim, announce readiness, run the image.

    Until claimed it sleeps in a blocking read of the ``go`` FIFO (no polling, no CPU). Once
    claimed, a background shell runs the image's own readiness check every 10 ms and writes
    ``up`` to the ``up`` FIFO when it passes, while the image's entrypoint and command (``$@``)
    start as they would have. A restarted agent finds the marker and starts at once.
    """
    d = claim_dir
    marker = f"{d}/{MARKER_NAME}"
    check = shlex.join(probe) if probe else "true"
    announcer = (
        f"( i=0; until {check} >/dev/null 2>&1; do i=$((i+1)); "
        f"[ $i -ge {_ANNOUNCE_TRIES} ] && exit 0; sleep 0.01; done; echo up >{d}/{UP_NAME} ) "
        "</dev/null >/dev/null 2>&1 &"
    )
    run = f'. {env_sh} && exec "$@"' if load_env_sh else 'exec "$@"'
    return (
        f"if [ ! -e {marker} ]; then "
        f"while [ ! -e {marker} ]; do read -r _ <{d}/{GO_NAME} || sleep 0.01; done; "
        f"{announcer} fi; {run}"
    )


def image_argv(spec: ContainerSpec, image: ImageInfo) -> tuple[str, ...]:
    """What the container would run: its entrypoint, then its command, as Docker combines
    them (an entrypoint set on the container drops the image's CMD)."""
    if spec.entrypoint is not None:
        argv = spec.entrypoint + (spec.command or ())
    else:
        command = spec.command if spec.command is not None else image.cmd
        argv = (image.entrypoint or ()) + (command or ())
    if not argv:
        raise ValidationError(
            f"image {spec.image[:120]} defines no command", resolution="Give the agent a 'command'."
        )
    return argv


def held_spec(
    spec: ContainerSpec,
    image: ImageInfo,
    probe: tuple[str, ...] | None,
    mounts: tuple[MountSpec, ...],
) -> ContainerSpec:
    """``spec`` with its process held for a claim behind ``wait_script``."""
    healthcheck = spec.healthcheck
    if healthcheck is not None:
        healthcheck = replace(healthcheck, argv=HEALTH_WRAPPER + healthcheck.argv)
    elif probe is not None and spec.image_healthcheck:
        healthcheck = HealthProbe(
            argv=HEALTH_WRAPPER + probe,
            interval_s=image.health_interval_s,
            timeout_s=image.health_timeout_s,
            retries=image.health_retries,
            start_period_s=image.health_start_period_s,
        )
    shell = not loads_env_itself(image)
    return replace(
        spec,
        entrypoint=("/bin/sh", "-c", wait_script(probe, load_env_sh=shell), "sh"),
        command=image_argv(spec, image),
        mounts=spec.mounts + mounts,
        healthcheck=healthcheck,
    )


class DockerWarmStart:
    def __init__(
        self,
        engine: Engine,
        backend: DockerBackend,
        store: SecretStore,
        heartbeats: DockerHeartbeats,
    ) -> None:
        self._engine = engine
        self._backend = backend
        self._store = store
        self._heartbeats = heartbeats
        # The key a claimed container's files moved to (its slot's key until then).

    async def prepare(
        self, spec: ContainerSpec, image: ImageInfo, probe: tuple[str, ...] | None, slot: str
    ) -> WarmContainer:
        key = slot_key(slot)
        shell = not loads_env_itself(image)
        uid = numeric_uid(spec.user)
        folder = self._store.reserve(key, uid, shell=shell)
        try:
            make_claim_dir(folder / CLAIM_DIR_NAME, uid)
            claim_mount = MountSpec(
                "bind", CLAIM_DIR_TARGET, str(folder / CLAIM_DIR_NAME), read_only=True
            )
            # Its heartbeat channel is made under the slot's key too and moves with the
            # secret files to the agent's at a claim.
            beat = self._heartbeats.attach(key) if beats(image) else ()
            held = held_spec(
                spec, image, probe, (*self._store.mounts(key, shell=shell), claim_mount, *beat)
            )
            container_id = await self._backend.create(held)
            try:
                await self._backend.start(container_id)
                state = await self._backend.get(container_id)
                if state is None or not state.running:
                    raise HealthCheckFailedError("a pooled container exited at start")
            except BaseException:
                await asyncio.shield(self._backend.remove(container_id))
                raise
        except BaseException:
            self._store.remove(key)
            raise
        return WarmContainer(container_id, slot, key, spec.memory_bytes, spec.nano_cpus)

    async def claim(self, warm: WarmContainer, claim: WarmClaim, timeout_s: float) -> bool:
        folder = self._store.move(warm.key, claim.key)
        self._store.fill(claim.key, claim.env)
        claim_dir = folder / CLAIM_DIR_NAME
        fds: list[int] = []
        try:
            # Held read-write: opening never blocks, and the pipes live until the claim ends.
            up = open_fifo(claim_dir / UP_NAME)
            fds.append(up)
            go = open_fifo(claim_dir / GO_NAME)
            fds.append(go)

            async def agent() -> bool:
                if (claim.memory_bytes, claim.nano_cpus) != (warm.memory_bytes, warm.nano_cpus):
                    await self._update_limits(warm.container_id, claim)
                # The agent starts now, with its env and its limits.
                create_marker(claim_dir / MARKER_NAME)
                os.write(go, b"go\n")
                return await read_line(up, timeout_s) == b"up"

            async with asyncio.TaskGroup() as group:
                announced = group.create_task(agent())
                group.create_task(self._take_identity(warm.container_id, claim))
            return announced.result()
        except BaseExceptionGroup as group_error:
            first = group_error.exceptions[0]
            if isinstance(first, ParallaxError):
                raise first from group_error
            raise
        finally:
            for fd in fds:
                os.close(fd)

    async def _update_limits(self, container_id: str, claim: WarmClaim) -> None:
        body = {
            "Memory": claim.memory_bytes,
            "MemorySwap": claim.memory_bytes,
            "NanoCpus": claim.nano_cpus,
        }
        async with engine_call("container", "update", container_id[:12]):
            answer = await self._engine.containers.update(container_id, body)
        refused = warnings_failure(answer)
        if refused is not None:
            raise refused

    async def _take_identity(self, container_id: str, claim: WarmClaim) -> None:
        async with engine_call("container", "rename", claim.name):
            await self._engine.containers.rename(container_id, claim.name)
        async with engine_call("network", "connect", claim.network):
            await self._engine.networks.disconnect(claim.network, container_id)
            await self._engine.networks.connect(claim.network, container_id, claim.aliases)

    async def discard(self, container_id: str, slot: str, key: str | None = None) -> None:
        keys = [key]
        if slot.isalnum():
            keys.append(slot_key(slot))
        await self._backend.remove(container_id)
        for key in keys:
            if key is not None:
                self._store.remove(key)


def make_claim_dir(claim: Path, uid: int | None) -> None:
    """The claim directory with its two FIFOs, reachable by the agent's user only.

    The container reads ``go`` and writes ``up``; a FIFO carries no data to the filesystem, so
    the read-only mount does not stop it. Owned by the agent's uid when the service can say so;
    otherwise open to any uid (the 0700 key folder around it keeps host users out).
    """
    claim.mkdir(mode=0o700)
    os.mkfifo(claim / GO_NAME, 0o400)
    os.mkfifo(claim / UP_NAME, 0o600)
    if uid is not None and os.geteuid() == 0:
        try:
            for path in (claim, claim / GO_NAME, claim / UP_NAME):
                os.chown(path, uid, -1)
        except PermissionError:
            uid = None  # root without CAP_CHOWN: as for any other service user, below
        else:
            os.chmod(claim, 0o500)
            os.chmod(claim / UP_NAME, 0o200)
            return
    os.chmod(claim, 0o755)  # noqa: S103 - inside the service's 0700 folder
    os.chmod(claim / GO_NAME, 0o644)
    os.chmod(claim / UP_NAME, 0o622)  # noqa: S103 - inside the service's 0700 folder


def open_fifo(path: Path) -> int:
    info = os.lstat(path)
    if not stat.S_ISFIFO(info.st_mode):
        raise HealthCheckFailedError("a pooled container's claim directory was tampered with")
    return os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)


async def read_line(fd: int, timeout_s: float) -> bytes | None:
    """The first line that arrives on the FIFO ``fd`` within ``timeout_s``, else None."""
    loop = asyncio.get_running_loop()
    arrived: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not arrived.done():
            arrived.set_result(None)

    loop.add_reader(fd, readable)
    try:
        async with asyncio.timeout(timeout_s):
            await arrived
    except TimeoutError:
        return None
    finally:
        loop.remove_reader(fd)
    try:
        data = os.read(fd, 64)
    except BlockingIOError:
        return None
    return data.split(b"\n", 1)[0].strip()


def create_marker(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o444)
    os.close(fd)
