"""The warm pool: agent containers started ahead of time, claimed by a spawn that fits.

``PARALLAX_POOL`` names, per agent type, how many containers to keep started with the type's
default settings (image, default limits, the default network, the runtime's hardening). A spawn
whose request needs nothing a pooled container lacks (no volumes, command, workdir, labels,
other network, image or runtime; see ``unfit_reason``) claims one instead of creating a
container; anything else, or an empty pool, starts cold as before. The pool refills in the
background.

A pooled container is created and started like an agent, but its agent process has not run:
the entrypoint waits for a marker file, ``/run/parallax/claim/ready``, in a directory the service
bind-mounts read-only from the host (project images: the entrypoint's ``PARALLAX_ENV_READY``; any
other image: a small ``/bin/sh`` wrapper). A claim then, in order:

1. records the claim (the agent's labels) in a small file under ``PARALLAX_STATE_DIR``;
2. moves the container's secret files to the agent's own secrets directory and writes the
   agent's env into them in place (the env file is a bind mount of that very file);
3. sets the requested memory and CPU limits with the engine's update call;
4. creates the marker: the entrypoint loads the env and starts the agent;
5. meanwhile renames the container to ``parallax-<id>`` and re-joins the network with the
   agent's aliases (aliases can only be given when joining);
6. waits for readiness with the image's own check, as a cold spawn does;
7. marks the claim complete.

Labels are fixed at create, and pooled containers carry only pool labels. The claim file is what
gives a claimed container its agent identity back after a restart of the service: on start-up
the claims are read before the registry is filled, and the service takes a claimed container's
identity from them. A claim left incomplete (the service died mid-claim) is not an agent: its
container is removed, like every pooled container a previous run left idle. See docs/pool.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets as token
import shlex
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from parallax_docker.backends.base import (
    Backend,
    ContainerEvent,
    ContainerSpec,
    ContainerState,
    HealthProbe,
    ImageInfo,
    MountSpec,
)
from parallax_docker.config import PoolSize, Settings
from parallax_docker.errors import (
    HealthCheckFailedError,
    ImageNotFoundError,
    InsecureSpawnError,
    ParallaxError,
)
from parallax_docker.models import SpawnRequest
from parallax_docker.run_as import RunAs, plan_user
from parallax_docker.runtime.labels import AgentLabels, container_name, selector
from parallax_docker.runtime.readiness import wait_ready
from parallax_docker.runtime.secrets import (
    ENV_FILE_NAME,
    ENV_FILE_TARGET,
    ENV_SH_NAME,
    ENV_SH_TARGET,
    SecretStore,
    encode_env,
    encode_env_sh,
    loads_env_itself,
    wrapped_command,
)
from parallax_docker.runtime.spec import PlannedAgent, container_spec, health_probe, plan_agent
from parallax_docker.runtime.unprivileged import create_unprivileged

log = logging.getLogger(__name__)

POOL = "parallax.pool"
POOL_TYPE = "parallax.pool.type"
POOL_SLOT = "parallax.pool.slot"
CLAIM_DIR_NAME = "claim"
CLAIM_DIR_TARGET = "/run/parallax/claim"
# In the claim directory: the marker that the container was claimed (kept: a restarted agent
# skips the wait), the FIFO the service wakes the container on, the FIFO it answers on.
MARKER_NAME = "ready"
GO_NAME = "go"
UP_NAME = "up"
MARKER_TARGET = f"{CLAIM_DIR_TARGET}/{MARKER_NAME}"
SLOT_DIR_PREFIX = "pool-"
# How long the container's announcer keeps trying the image's check (10 ms apart).
_ANNOUNCE_TRIES = 6000
# Docker's own HEALTHCHECK passes while the container waits in the pool, then is the image's.
HEALTH_WRAPPER: tuple[str, ...] = (
    "/bin/sh",
    "-c",
    f'test -e {MARKER_TARGET} || exit 0; exec "$@"',
    "sh",
)
_FILL_CONCURRENCY = 2
_MAINTAIN_EVERY_S = 10.0
# A pooled container is already up: readiness after a claim is quick or something is wrong.
_CLAIM_READY_TIMEOUT_S = 15.0
# Without the container's announcement this soon, readiness is probed from outside instead.
_ANNOUNCE_WAIT_S = 3.0


# -- pure rules ---------------------------------------------------------------------------------


def pool_image(settings: Settings, size: PoolSize) -> str:
    return size.image or settings.image_for("base" if size.type == "custom" else size.type)


def unfit_reason(plan: PlannedAgent, settings: Settings, size: PoolSize | None) -> str | None:
    """Why a pooled container cannot serve ``plan`` (None: it can)."""
    if size is None or size.size == 0:
        return "no pool for this type"
    if plan.image != pool_image(settings, size):
        return "another image"
    if plan.mounts or plan.named_volumes:
        return "volumes"
    network = plan.network
    if network.is_none or network.internal or network.name != settings.docker_network:
        return "another network"
    if plan.command is not None:
        return "a command"
    if plan.labels.workdir is not None:
        return "a workdir"
    if plan.labels.user_labels:
        return "labels"
    if plan.labels.execution_id is not None:
        return "an execution"
    if plan.runtime != settings.runtime:
        return "another runtime"
    return None


def template_plan(size: PoolSize, settings: Settings, slot: str) -> PlannedAgent:
    """The plan of a pooled container: the type's defaults, no env, no extras."""
    request = SpawnRequest.model_validate(
        {"id": f"{SLOT_DIR_PREFIX}{slot}", "name": f"{SLOT_DIR_PREFIX}{slot}", "type": size.type}
        | ({"image": size.image} if size.image else {})
    )
    # The host limits only matter for a request's own limits; the defaults always fit.
    return plan_agent(request, settings, host_memory=1 << 62, host_cpus=1 << 16)


def pool_container_name(slot: str) -> str:
    return f"parallax-{SLOT_DIR_PREFIX}{slot}"


def wait_script(probe: tuple[str, ...] | None, load_env_sh: bool) -> str:
    """The pooled container's command: wait for the claim, announce readiness, run the image.

    Until claimed it sleeps in a blocking read of the ``go`` FIFO (no polling, no CPU). Once
    claimed, a background shell runs the image's own readiness check every 10 ms and writes
    ``up`` to the ``up`` FIFO when it passes, while the image's entrypoint and command (``$@``)
    start as they would have. A restarted agent finds the marker and starts at once.
    """
    d = CLAIM_DIR_TARGET
    check = shlex.join(probe) if probe else "true"
    announcer = (
        f"( i=0; until {check} >/dev/null 2>&1; do i=$((i+1)); "
        f"[ $i -ge {_ANNOUNCE_TRIES} ] && exit 0; sleep 0.01; done; echo up >{d}/{UP_NAME} ) "
        "</dev/null >/dev/null 2>&1 &"
    )
    run = f'. {ENV_SH_TARGET} && exec "$@"' if load_env_sh else 'exec "$@"'
    return (
        f"d={d}; if [ ! -e {MARKER_TARGET} ]; then "
        f"while [ ! -e {MARKER_TARGET} ]; do read -r _ <{d}/{GO_NAME} || sleep 0.01; done; "
        f"{announcer} fi; {run}"
    )


def pool_container_spec(
    size: PoolSize,
    image: ImageInfo,
    settings: Settings,
    slot: str,
    folder: Path,
) -> ContainerSpec:
    """A pooled container: an agent of ``size.type`` with default settings, waiting for a claim.

    Every image runs under a small ``/bin/sh`` wrapper (``wait_script``) that holds the image's
    own entrypoint and command until the claim. Project images then load the env file
    themselves; other images get it from ``env.sh``, as a cold spawn wraps them.
    """
    plan = template_plan(size, settings, slot)
    native = loads_env_itself(image)
    mounts = [
        MountSpec("bind", ENV_FILE_TARGET, str(folder / ENV_FILE_NAME), read_only=True),
        MountSpec("bind", CLAIM_DIR_TARGET, str(folder / CLAIM_DIR_NAME), read_only=True),
    ]
    if not native:
        mounts.append(MountSpec("bind", ENV_SH_TARGET, str(folder / ENV_SH_NAME), read_only=True))
    _, argv = wrapped_command(image, None, plan.image)
    probe = health_probe(image)
    base = container_spec(plan, image, settings)
    healthcheck = None
    if probe is not None:
        healthcheck = HealthProbe(
            argv=HEALTH_WRAPPER + probe,
            interval_s=image.health_interval_s,
            timeout_s=image.health_timeout_s,
            retries=image.health_retries,
            start_period_s=image.health_start_period_s,
        )
    return replace(
        base,
        name=pool_container_name(slot),
        labels={**selector(settings.instance), POOL: "true", POOL_TYPE: size.type, POOL_SLOT: slot},
        aliases=(),
        entrypoint=("/bin/sh", "-c", wait_script(probe, load_env_sh=not native), "sh"),
        command=argv,
        mounts=base.mounts + tuple(mounts),
        healthcheck=healthcheck,
    )


# -- claim records ------------------------------------------------------------------------------


class ClaimStore:
    """Which agent each claimed container is: one small JSON file per container, written
    atomically. Complete claims give a claimed container its identity after a restart."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._complete: dict[str, AgentLabels] = {}
        self._pending: set[str] = set()

    def load(self) -> None:
        try:
            entries = sorted(self.folder.glob("*.json"))
        except OSError:
            return
        for path in entries:
            try:
                data = json.loads(path.read_text())
                labels = AgentLabels.decode(data["labels"])
                container_id = str(data["container"])
            except (OSError, ValueError, KeyError, TypeError):
                log.warning("ignoring an unreadable pool claim record %s", path.name)
                continue
            if labels is None:
                continue
            if data.get("complete"):
                self._complete[container_id] = labels
            else:
                self._pending.add(container_id)

    def put(self, container_id: str, labels: AgentLabels, *, complete: bool) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.folder / f"{container_id}.json"
        temp = path.with_name(f".{path.name}.tmp")
        body = {"container": container_id, "complete": complete, "labels": labels.encode()}
        temp.write_text(json.dumps(body, sort_keys=True))
        os.replace(temp, path)
        if complete:
            self._pending.discard(container_id)
            self._complete[container_id] = labels
        else:
            self._pending.add(container_id)

    def drop(self, container_id: str) -> None:
        self._complete.pop(container_id, None)
        self._pending.discard(container_id)
        with contextlib.suppress(OSError):
            (self.folder / f"{container_id}.json").unlink()

    def labels(self, container_id: str) -> AgentLabels | None:
        return self._complete.get(container_id)

    def pending(self, container_id: str) -> bool:
        return container_id in self._pending

    def container_of(self, agent_id: str) -> str | None:
        for container_id, labels in self._complete.items():
            if labels.id == agent_id:
                return container_id
        return None

    def containers(self) -> set[str]:
        return set(self._complete) | self._pending


# -- the pool -----------------------------------------------------------------------------------


@dataclass
class PoolSlot:
    container_id: str
    slot: str
    size: PoolSize
    image_ref: str
    image: ImageInfo
    folder: Path
    native: bool
    limits: tuple[int, int] = (0, 0)


@dataclass
class PoolCounters:
    claims: int = 0
    misses: int = 0
    failures: int = 0
    filled: int = 0


class WarmPool:
    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        secrets: SecretStore,
        claims: ClaimStore,
        *,
        engine_up: Callable[[], bool],
    ) -> None:
        self._settings = settings
        self._backend = backend
        self._secrets = secrets
        self._engine_up = engine_up
        self._sizes: dict[str, PoolSize] = {s.type: s for s in settings.pool if s.size > 0}
        self._idle: dict[str, list[PoolSlot]] = {t: [] for t in self._sizes}
        self._filling: dict[str, int] = dict.fromkeys(self._sizes, 0)
        self._claiming: set[str] = set()
        self._starting: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._maintained = 0.0
        self._first_pass = True
        self.counters = PoolCounters()
        self.claims = claims

    @property
    def enabled(self) -> bool:
        return bool(self._sizes)

    def idle_count(self, agent_type: str | None = None) -> int:
        if agent_type is not None:
            return len(self._idle.get(agent_type, ()))
        return sum(len(slots) for slots in self._idle.values())

    def slot_dirs(self) -> list[str]:
        """Names of the secrets directories pooled containers have mounted (keep them)."""
        return [slot.folder.name for slots in self._idle.values() for slot in slots]

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="parallax-pool")

    async def stop(self) -> None:
        """Stop refilling and remove every idle pooled container (claimed ones are agents)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        idle = [slot for slots in self._idle.values() for slot in slots]
        for slots in self._idle.values():
            slots.clear()
        if idle and self._engine_up():
            await asyncio.gather(*(self._discard(slot) for slot in idle), return_exceptions=True)

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        while True:
            if self._engine_up():
                try:
                    now = time.monotonic()
                    if self._first_pass or now - self._maintained >= _MAINTAIN_EVERY_S:
                        await self.maintain()
                        self._maintained = now
                        self._first_pass = False
                    await self._fill()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # one bad pass must not end the pool
                    log.warning("warm pool pass failed: %s", _describe(exc))
            assert self._wake is not None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0 if not self._engine_up() else _MAINTAIN_EVERY_S):
                    await self._wake.wait()
            self._wake.clear()

    # -- filling --------------------------------------------------------------------------

    async def _fill(self) -> None:
        wanted = []
        for agent_type, size in self._sizes.items():
            missing = size.size - len(self._idle[agent_type]) - self._filling[agent_type]
            wanted += [size] * max(0, missing)
        if not wanted:
            return
        gate = asyncio.Semaphore(_FILL_CONCURRENCY)

        async def one(size: PoolSize) -> None:
            async with gate:
                await self._fill_one(size)

        for size in wanted:
            self._filling[size.type] += 1
        results = await asyncio.gather(*(one(size) for size in wanted), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            log.warning(
                "could not start %d pooled container(s): %s", len(failed), _describe(failed[0])
            )

    async def _fill_one(self, size: PoolSize) -> None:
        try:
            ref = pool_image(self._settings, size)
            image = await self._backend.get_image(ref)
            if image is None:
                raise ImageNotFoundError(f"image {ref} of the {size.type} pool is not built")
            slot = token.token_hex(6)
            folder = self._make_slot_dir(slot, image)
            spec = pool_container_spec(size, image, self._settings, slot, folder)
            try:
                container_id = await create_unprivileged(
                    self._backend, spec, self._run_as(image), tmpfs_size=self._settings.tmpfs_size
                )
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            entry = PoolSlot(
                container_id,
                slot,
                size,
                ref,
                image,
                folder,
                loads_env_itself(image),
                (spec.memory_bytes, spec.nano_cpus),
            )
            self._starting.add(container_id)
            try:
                await self._backend.start(container_id)
                state = await self._backend.get(container_id)
                if state is None or not state.running:
                    raise HealthCheckFailedError("a pooled container exited at start")
            except BaseException:
                await asyncio.shield(self._discard(entry))
                raise
            finally:
                self._starting.discard(container_id)
            self._idle[size.type].append(entry)
            self.counters.filled += 1
        finally:
            self._filling[size.type] -= 1

    def _run_as(self, image: ImageInfo) -> RunAs:
        return plan_user(image.user, allow_root=self._settings.allow_root)

    def _make_slot_dir(self, slot: str, image: ImageInfo) -> Path:
        root = self._secrets.root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder = root / f"{SLOT_DIR_PREFIX}{slot}"
        folder.mkdir(mode=0o700)
        uid = self._run_as(image).known_uid
        claim = folder / CLAIM_DIR_NAME
        claim.mkdir(mode=0o700)
        # The container reads "go" and writes "up"; a FIFO carries no data to the filesystem,
        # so the read-only mount does not stop it. Owned by the agent's uid when the service
        # can say so; otherwise open to any uid (the 0700 folder above keeps host users out).
        os.mkfifo(claim / GO_NAME, 0o400)
        os.mkfifo(claim / UP_NAME, 0o600)
        if uid is not None and os.geteuid() == 0:
            for path in (claim, claim / GO_NAME, claim / UP_NAME):
                os.chown(path, uid, -1)
            os.chmod(claim, 0o500)
            os.chmod(claim / UP_NAME, 0o200)
        else:
            os.chmod(claim, 0o755)  # noqa: S103 - inside the service's 0700 folder
            os.chmod(claim / GO_NAME, 0o644)
            os.chmod(claim / UP_NAME, 0o622)  # noqa: S103 - inside the service's 0700 folder
        for name in (ENV_FILE_NAME, ENV_SH_NAME):
            _create_secret_file(folder / name, uid)
        return folder

    # -- claiming -------------------------------------------------------------------------

    def take(self, plan: PlannedAgent) -> PoolSlot | None:
        """An idle pooled container for ``plan``, or None (no fit, or none left)."""
        size = self._sizes.get(plan.labels.type)
        reason = unfit_reason(plan, self._settings, size)
        if reason is not None:
            if size is not None:
                log.debug("spawn of %s starts cold: it asks for %s", plan.labels.id, reason)
            return None
        idle = self._idle[plan.labels.type]
        if not idle:
            self.counters.misses += 1
            self._poke()
            return None
        slot = idle.pop(0)
        self._claiming.add(slot.container_id)
        return slot

    async def claim(self, slot: PoolSlot, plan: PlannedAgent) -> ContainerState:
        """Make ``slot`` the agent of ``plan``; on any failure the container is removed."""
        container_id = slot.container_id
        labels = plan.labels
        started = time.monotonic()
        steps: dict[str, float] = {}
        fds: list[int] = []
        try:
            self.claims.put(container_id, labels, complete=False)
            folder = self._secrets.agent_dir(labels.id)
            self._secrets.remove(labels.id)
            os.rename(slot.folder, folder)
            slot.folder = folder
            _write_in_place(folder / ENV_FILE_NAME, encode_env(plan.env))
            if not slot.native:
                _write_in_place(folder / ENV_SH_NAME, encode_env_sh(plan.env))
            claim_dir = folder / CLAIM_DIR_NAME
            # Held read-write: opening never blocks, and the pipes live until the claim ends.
            up = _open_fifo(claim_dir / UP_NAME)
            fds.append(up)
            go = _open_fifo(claim_dir / GO_NAME)
            fds.append(go)

            async def agent() -> ContainerState:
                if (labels.memory_bytes, labels.nano_cpus) != slot.limits:
                    await self._backend.update_limits(
                        container_id, labels.memory_bytes, labels.nano_cpus
                    )
                steps["limits"] = time.monotonic() - started
                # The agent starts now, with its env and its limits.
                _create_marker(claim_dir / MARKER_NAME)
                os.write(go, b"go\n")
                return await self._ready(slot, up, started, steps)

            async def identity() -> None:
                await self._backend.rename(container_id, container_name(labels.id))
                steps["rename"] = time.monotonic() - started
                aliases = tuple(dict.fromkeys((labels.name, container_name(labels.id), labels.id)))
                await self._backend.reconnect(container_id, plan.network.name, aliases)
                steps["network"] = time.monotonic() - started

            async with asyncio.TaskGroup() as group:
                ready = group.create_task(agent())
                group.create_task(identity())
            state = ready.result()
            # One last read: the state after the network change, to check the limits on.
            final = await self._backend.get(container_id) or state
            if final.memory_bytes != labels.memory_bytes or final.nano_cpus != labels.nano_cpus:
                raise InsecureSpawnError("the engine did not apply the agent's limits at claim")
            if not final.running:
                raise HealthCheckFailedError("the agent exited while it was claimed")
            self.claims.put(container_id, labels, complete=True)
        except BaseException as exc:
            self.counters.failures += 1
            await asyncio.shield(self._discard(slot, agent_id=labels.id))
            if isinstance(exc, BaseExceptionGroup):
                first = exc.exceptions[0]
                if isinstance(first, ParallaxError):
                    raise first from exc
            raise
        finally:
            for fd in fds:
                os.close(fd)
            self._claiming.discard(container_id)
            self._poke()
        self.counters.claims += 1
        log.info(
            "agent claimed from the pool",
            extra={
                "agent_id": labels.id,
                "type": labels.type,
                "seconds": round(time.monotonic() - started, 4),
                "steps": {k: round(v, 4) for k, v in steps.items()},
            },
        )
        return final

    async def _ready(
        self, slot: PoolSlot, up: int, started: float, steps: dict[str, float]
    ) -> ContainerState:
        """Wait for the container's own announcement that its check passed; without one in
        time, probe from outside as a cold spawn does."""
        timeout = min(self._settings.ready_timeout_s, _CLAIM_READY_TIMEOUT_S)
        if await _read_line(up, _ANNOUNCE_WAIT_S) == b"up":
            steps["ready"] = time.monotonic() - started
            state = await self._backend.get(slot.container_id)
            if state is None or not state.running:
                raise HealthCheckFailedError("the agent exited while it was claimed")
            return state
        log.warning("pooled container %s did not announce itself; probing it", slot.slot)
        state = await wait_ready(
            self._backend,
            slot.container_id,
            health_probe(slot.image),
            timeout_s=max(1.0, timeout - (time.monotonic() - started)),
        )
        steps["ready"] = time.monotonic() - started
        return state

    async def _discard(self, slot: PoolSlot, agent_id: str | None = None) -> None:
        with contextlib.suppress(ParallaxError):
            await self._backend.remove(slot.container_id, force=True)
        self.claims.drop(slot.container_id)
        shutil.rmtree(slot.folder, ignore_errors=True)
        if agent_id is not None:
            self._secrets.remove(agent_id)

    # -- keeping it true ------------------------------------------------------------------

    def observe_event(self, event: ContainerEvent) -> None:
        """An engine event for a container without agent labels: maybe an idle pooled one."""
        if event.labels.get(POOL) != "true" or event.action not in ("die", "destroy", "oom"):
            return
        for slots in self._idle.values():
            for slot in list(slots):
                if slot.container_id == event.container_id:
                    slots.remove(slot)
                    log.warning("a pooled container %s died while idle", slot.slot)
                    task = asyncio.get_running_loop().create_task(self._discard(slot))
                    task.add_done_callback(_consume)
                    self._poke()

    def holds(self) -> set[str]:
        """The containers this pool keeps idle, is starting or is claiming right now."""
        held = {slot.container_id for slots in self._idle.values() for slot in slots}
        return held | self._claiming | self._starting

    async def leftovers(self) -> list[ContainerState]:
        """Pooled containers this pool does not hold and no claim made an agent."""
        return await leftover_pool_containers(
            self._backend, self._settings.instance, self.claims, self.holds
        )

    async def maintain(self) -> list[str]:
        """Remove leftovers (a previous run's idle containers, half-made claims, dead idle
        ones), forget claims whose container is gone; the names of what was removed."""
        found = await self._backend.list({**selector(self._settings.instance), POOL: "true"})
        present = {state.id for state in found}
        for container_id in self.claims.containers() - present:
            if container_id not in self._claiming:
                self.claims.drop(container_id)
        removed = []
        for state in await self.leftovers():
            with contextlib.suppress(ParallaxError):
                await remove_pool_container(self._backend, self._secrets, self.claims, state)
                removed.append(state.name)
        for slots in self._idle.values():
            for slot in list(slots):
                if slot.container_id not in present:
                    slots.remove(slot)
                    shutil.rmtree(slot.folder, ignore_errors=True)
        if removed:
            log.info("removed %d pooled container(s) left over", len(removed))
        return removed


async def leftover_pool_containers(
    backend: Backend, instance: str, claims: ClaimStore, held: Callable[[], set[str]]
) -> list[ContainerState]:
    """The instance's pooled containers that are neither ``held`` by a live pool nor claimed:
    a previous run's idle ones, half-made claims, a disabled pool's."""
    found = await backend.list({**selector(instance), POOL: "true"})
    # Asked after the list: what the pool holds now, including what it made meanwhile.
    keep = held()
    return [state for state in found if state.id not in keep and claims.labels(state.id) is None]


async def remove_pool_container(
    backend: Backend, secrets: SecretStore, claims: ClaimStore, state: ContainerState
) -> None:
    """Remove a leftover pooled container with its secrets directory and claim record."""
    await backend.remove(state.id, force=True)
    slot = state.labels.get(POOL_SLOT, "")
    if slot and all(c.isalnum() for c in slot):
        shutil.rmtree(secrets.root / f"{SLOT_DIR_PREFIX}{slot}", ignore_errors=True)
    claims.drop(state.id)


def _create_secret_file(path: Path, uid: int | None) -> None:
    """An empty file the agent can read and the service can rewrite in place later."""
    euid = os.geteuid()
    owner_only = uid is not None and (euid == 0 or uid == euid)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        if owner_only and uid is not None and euid == 0:
            os.fchown(fd, uid, -1)
        # Root rewrites a 0400 file; any other service user needs its own write bit.
        os.fchmod(fd, 0o400 if owner_only and euid == 0 else 0o644)
    finally:
        os.close(fd)


def _write_in_place(path: Path, data: bytes) -> None:
    """Rewrite ``path`` keeping its inode: the container has this very file mounted."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _open_fifo(path: Path) -> int:
    info = os.lstat(path)
    if not stat.S_ISFIFO(info.st_mode):
        raise HealthCheckFailedError("a pooled container's claim directory was tampered with")
    return os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)


async def _read_line(fd: int, timeout_s: float) -> bytes | None:
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


def _create_marker(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o444)
    os.close(fd)


def _consume(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _describe(exc: BaseException) -> str:
    return f"{exc.code}: {exc.message}" if isinstance(exc, ParallaxError) else type(exc).__name__
