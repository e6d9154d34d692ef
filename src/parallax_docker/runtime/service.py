"""AgentService: the operations the API offers, on top of a Backend.

It owns admission (validation, conflicts), the spawn lifecycle (create -> start -> readiness ->
ready, or clean removal on any failure) and the in-memory registry that the reconciler keeps
true. It raises project errors only; it never sees HTTP.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from parallax_docker.backends.base import Backend, ContainerState, EngineInfo, ImageInfo
from parallax_docker.config import Settings
from parallax_docker.errors import (
    AgentStateError,
    HealthCheckFailedError,
    ImageNotFoundError,
    NetworkForbiddenError,
    ParallaxError,
    SocketError,
    ValidationError,
    VolumeForbiddenError,
)
from parallax_docker.models import (
    AgentHandle,
    AgentStatus,
    HealthResponse,
    MetricsResponse,
    RuntimeInfo,
    SpawnRequest,
)
from parallax_docker.runtime.admission import admit, capacity, committed
from parallax_docker.runtime.events import EventBus
from parallax_docker.runtime.homes import is_runtime_owned
from parallax_docker.runtime.labels import MANAGED, AgentLabels, selector
from parallax_docker.runtime.metrics import MetricsSampler
from parallax_docker.runtime.pool import ClaimStore, WarmPool
from parallax_docker.runtime.readiness import probe_passes, wait_ready
from parallax_docker.runtime.registry import AgentRecord, Registry
from parallax_docker.runtime.secrets import SHELL_WRAPPER, SecretStore
from parallax_docker.runtime.spec import PlannedAgent, container_spec, health_probe, plan_agent
from parallax_docker.runtime.telemetry import Telemetry
from parallax_docker.security import check_runtime_available, image_uid

log = logging.getLogger(__name__)

MAX_LOG_TAIL = 10_000


class AgentService:
    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        bus: EventBus | None = None,
        telemetry: Telemetry | None = None,
        secrets: SecretStore | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.secrets = secrets or SecretStore(settings.secrets_dir)
        self.bus = bus or EventBus()
        self.telemetry = telemetry or Telemetry()
        self.registry = Registry()
        self.engine: EngineInfo | None = None
        self._network_lock = asyncio.Lock()
        self._networks_ready: set[str] = set()
        self._sampler = MetricsSampler(backend)
        self.selector = selector(settings.instance)
        # Which agents claimed pooled containers are: read before the first sync, and kept
        # even when the pool is now off, so claimed agents are served after any restart.
        self.claims = ClaimStore(settings.state_dir / "pool" / settings.instance)
        self.claims.load()
        # Pre-started containers that fitting spawns claim (docs/pool.md); None when unset.
        self.pool = (
            WarmPool(settings, backend, self.secrets, self.claims, engine_up=lambda: self.engine_up)
            if any(size.size for size in settings.pool)
            else None
        )

    # -- engine state -----------------------------------------------------------------------

    @property
    def engine_up(self) -> bool:
        return self.engine is not None

    async def connect(self) -> EngineInfo:
        """Reach the engine and make the default network; SocketError if it is down.

        Writes stay refused until ``engine_ready``: the registry must first be in sync, or a
        spawn could take the name of an agent not yet adopted.
        """
        info = await self.backend.ping()
        self._networks_ready.clear()
        await self._ensure_network(self.settings.docker_network, internal=False)
        return info

    def engine_ready(self, info: EngineInfo) -> None:
        self.engine = info

    def engine_lost(self) -> None:
        self.engine = None

    async def health(self) -> tuple[bool, HealthResponse]:
        try:
            info = await self.backend.ping()
        except ParallaxError as exc:
            self.engine_lost()
            return False, HealthResponse(
                healthy=False,
                message=f"Docker engine unreachable: {exc.message}",
                code="SOCKET_ERROR",
                runtime=RuntimeInfo(active_agents=self.registry.active_count(), synced=False),
            )
        return True, HealthResponse(
            healthy=True,
            message="Docker runtime is healthy",
            runtime=RuntimeInfo(
                active_agents=self.registry.active_count(),
                synced=self.engine_up,
                engine_version=info.version,
                api_version=info.api_version,
            ),
        )

    def require_engine(self) -> EngineInfo:
        if self.engine is None:
            raise SocketError("the Docker engine is not reachable")
        return self.engine

    async def _ensure_network(self, name: str, internal: bool) -> None:
        if name in self._networks_ready:
            return
        async with self._network_lock:
            if name not in self._networks_ready:
                labels = await self.backend.ensure_network(name, self.selector, internal=internal)
                # The default network may be made by hand, as the spec shows; any other
                # network an agent joins must be the runtime's, or the agent could be put next
                # to containers that are not agents.
                if name != self.settings.docker_network and labels.get(MANAGED) != "true":
                    raise NetworkForbiddenError(
                        f"network {name!r} exists but is not managed by the runtime",
                        resolution="Choose a new network name; the runtime creates and labels it.",
                    )
                self._networks_ready.add(name)

    # -- spawn ------------------------------------------------------------------------------

    async def spawn(self, request: SpawnRequest) -> AgentHandle:
        engine = self.require_engine()
        plan = plan_agent(
            request, self.settings, host_memory=engine.memory_bytes, host_cpus=engine.cpus
        )
        existing = self.registry.find(plan.labels.id) if request.id else None
        if existing is not None and existing.labels.spec_hash == plan.labels.spec_hash:
            return await self._same_spawn(existing)
        # No await between the capacity check and the reservation: two spawns cannot both
        # take the last of the host.
        admit(
            plan.labels.memory_bytes,
            plan.labels.nano_cpus,
            committed(self.registry),
            capacity(
                engine.memory_bytes,
                engine.cpus,
                self.settings.memory_overcommit,
                self.settings.cpu_overcommit,
            ),
        )
        record = self.registry.reserve(plan.labels)
        started = time.monotonic()
        try:
            handle = await self._spawn_reserved(record, plan)
        except BaseException as exc:
            self.telemetry.spawn_finished(record.labels.type, time.monotonic() - started, exc)
            self.registry.drop(record.id)
            self.secrets.remove(record.id)
            raise
        finally:
            record.settled.set()
        self.telemetry.spawn_finished(record.labels.type, time.monotonic() - started, None)
        log.info(
            "agent spawned",
            extra={
                "agent_id": record.id,
                "type": record.labels.type,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        return handle

    async def _same_spawn(self, record: AgentRecord) -> AgentHandle:
        """A retried spawn with the same id and body: the same agent, once it is settled."""
        await record.settled.wait()
        current = self.registry.find(record.id)
        if current is None:
            raise HealthCheckFailedError(
                f"the first spawn of agent {record.id!r} failed; retry it",
                resolution="Send the request again: nothing of the failed spawn is left.",
            )
        if current.stopping:
            raise AgentStateError(f"agent {record.id!r} is being stopped")
        return current.handle()

    async def _spawn_reserved(self, record: AgentRecord, plan: PlannedAgent) -> AgentHandle:
        slot = self.pool.take(plan) if self.pool is not None else None
        if self.pool is not None and slot is not None:
            try:
                state = await self.pool.claim(slot, plan)
            except Exception as exc:
                # The pooled container is gone; a cold start still serves the request.
                log.warning(
                    "claim from the warm pool failed, starting cold: %s",
                    exc.code if isinstance(exc, ParallaxError) else type(exc).__name__,
                    extra={"agent_id": record.id},
                )
            else:
                self._publish("agent_started", record)
                record.transitioning = False
                record.probed_ready = True
                record.observe(state)
                record.status = AgentStatus.READY
                self._publish("agent_ready", record)
                return record.handle()
        image = await self._image(plan.image, record.labels.type)
        # Everything that can refuse the spawn comes before the first thing it makes (a network).
        if self.engine is not None:
            check_runtime_available(plan.runtime, self.engine.runtimes)
        delivery = self.secrets.deliver(
            record.id,
            plan.env,
            image,
            image_ref=plan.image,
            command=plan.command,
            uid=image_uid(image.user),
        )
        await self._check_named_volumes(plan.named_volumes)
        if not plan.network.is_none:
            await self._ensure_network(plan.network.name, plan.network.internal)
        spec = container_spec(plan, image, self.settings, delivery)
        container_id = await self.backend.create(spec)
        try:
            record.status = AgentStatus.STARTING
            await self._start(container_id, wrapped=spec.entrypoint is not None, image=plan.image)
            self._publish("agent_started", record)
            state = await wait_ready(
                self.backend,
                container_id,
                health_probe(image),
                timeout_s=self.settings.ready_timeout_s,
            )
        except BaseException:
            await self._discard(container_id)
            raise
        record.transitioning = False
        record.probed_ready = True
        record.observe(state)
        record.status = AgentStatus.READY
        self._publish("agent_ready", record)
        return record.handle()

    async def _start(self, container_id: str, *, wrapped: bool, image: str) -> None:
        # A wrapped command sources the env file with /bin/sh; without one the agent would die
        # at once, after it looked started. Checked in the created container, before it runs.
        if wrapped and not await self.backend.path_exists(container_id, SHELL_WRAPPER[0]):
            raise ValidationError(
                f"image {image[:120]} has no /bin/sh, which an image without the parallax "
                "entrypoint needs to receive env values (they are never put in the container's "
                "Env)",
                resolution="Build the image FROM parallax/agent-base, add /bin/sh, or spawn it "
                "without env and credentials.",
            )
        await self.backend.start(container_id)

    async def _discard(self, container_id: str) -> None:
        # Shielded: a client that hangs up mid-spawn must not leave the container behind.
        with contextlib.suppress(ParallaxError):
            await asyncio.shield(self.backend.remove(container_id, force=True))

    async def _image(self, ref: str, agent_type: str) -> ImageInfo:
        image = await self.backend.get_image(ref)
        if image is None:
            build = "base" if agent_type == "custom" else agent_type
            hint = (
                f"Build it: parallax-docker images build {build}"
                if ref.startswith(self.settings.image_prefix)
                else f"Build or load the image {ref} first."
            )
            raise ImageNotFoundError(f"image {ref} is not built", resolution=hint)
        return image

    async def _check_named_volumes(self, names: Iterable[str]) -> None:
        for name in names:
            labels = await self.backend.volume_labels(name)
            if labels is not None and labels.get(MANAGED) != "true":
                raise VolumeForbiddenError(
                    f"volume {name!r} exists but is not managed by the runtime",
                    resolution="Use a new volume name; the runtime creates and labels it.",
                )
            if labels is not None and is_runtime_owned(labels):
                raise VolumeForbiddenError(
                    f"volume {name[:80]!r} is another agent's home",
                    resolution="Use a new volume name; an agent's home is its own.",
                )

    # -- reads ------------------------------------------------------------------------------

    def list(
        self, statuses: Iterable[str] = (), types: Iterable[str] = (), roles: Iterable[str] = ()
    ) -> builtins.list[AgentHandle]:
        stale = not self.engine_up
        return [record.handle(stale=stale) for record in self._selected(statuses, types, roles)]

    def list_json(
        self, statuses: Iterable[str] = (), types: Iterable[str] = (), roles: Iterable[str] = ()
    ) -> bytes:
        """``list`` as the JSON body of GET /agents, from each agent's cached handle JSON.

        The route answers with these bytes as they are: building, validating and serialising
        a few hundred handle models per request costs more than the 5 ms a read may take.
        """
        stale = not self.engine_up
        records = self._selected(statuses, types, roles)
        parts = b",".join(record.handle_json(stale) for record in records)
        return b'{"agents":[' + parts + b'],"count":' + str(len(records)).encode() + b"}"

    def _selected(
        self, statuses: Iterable[str], types: Iterable[str], roles: Iterable[str]
    ) -> builtins.list[AgentRecord]:
        wanted_status, wanted_type, wanted_role = set(statuses), set(types), set(roles)
        valid = {s.value for s in AgentStatus}
        if wanted_status - valid:
            raise ValidationError(
                f"unknown status filter {sorted(wanted_status - valid)[0]!r}",
                resolution=f"Use one of: {', '.join(sorted(valid))}.",
            )
        records = [
            record
            for record in self.registry
            if (not wanted_status or record.status.value in wanted_status)
            and (not wanted_type or record.labels.type in wanted_type)
            and (not wanted_role or record.labels.role in wanted_role)
        ]
        records.sort(key=lambda r: (r.labels.created_at or "", r.id))
        return records

    def get(self, agent_id: str) -> AgentHandle:
        return self.registry.get(agent_id).handle(stale=not self.engine_up)

    def get_json(self, agent_id: str) -> bytes:
        """``get`` as the JSON body of GET /agents/{id}."""
        return self.registry.get(agent_id).handle_json(stale=not self.engine_up)

    # -- stop, restart ----------------------------------------------------------------------

    async def stop(
        self,
        agent_id: str,
        *,
        force: bool = False,
        timeout_s: float | None = None,
        reason: str = "deleted",
    ) -> None:
        """Graceful stop (SIGTERM, then SIGKILL after the grace period), then remove."""
        self.require_engine()
        record = self.registry.get(agent_id)
        if record.transitioning:
            raise AgentStateError(f"agent {agent_id!r} is being spawned or restarted")
        if record.stopping:
            raise AgentStateError(f"agent {agent_id!r} is already being stopped")
        grace = self.settings.stop_grace_s if timeout_s is None else timeout_s
        record.stopping = True
        record.status = AgentStatus.STOPPING
        container_id = record.container_id
        started = time.monotonic()
        try:
            if container_id is not None:
                if force:
                    await self.backend.kill(container_id)
                else:
                    await self.backend.stop(container_id, grace)
                final = await self.backend.get(container_id)
                await self.backend.remove(container_id, force=True)
                if final is not None:
                    record.state = final
        except BaseException as exc:
            self.telemetry.stop_finished(time.monotonic() - started, exc)
            record.stopping = False
            # The reconciler left this container's events to the stop; read where it is now.
            with contextlib.suppress(ParallaxError):
                current = (
                    await asyncio.shield(self.backend.get(container_id))
                    if container_id is not None and isinstance(exc, Exception)
                    else None
                )
                if current is not None:
                    record.state = current
            if record.state is not None:
                record.observe(record.state)
            raise
        self.telemetry.stop_finished(time.monotonic() - started, None)
        record.status = AgentStatus.STOPPED
        self.registry.drop(agent_id)
        self.secrets.remove(agent_id)
        self._sampler.forget(agent_id)
        self._publish(
            "agent_stopped",
            record,
            reason=reason,
            exitCode=record.state.exit_code if record.state else None,
        )

    async def stop_all(self, reason: str) -> None:
        """Stop every agent (the service is going away and was told to take them along)."""
        if self.engine is None:
            return
        ids = [r.id for r in self.registry if not r.transitioning and not r.stopping]
        results = await asyncio.gather(
            *(self.stop(agent_id, reason=reason) for agent_id in ids), return_exceptions=True
        )
        failed = [i for i, r in zip(ids, results, strict=True) if isinstance(r, BaseException)]
        if failed:
            log.warning("could not stop %d agent(s) on exit: %s", len(failed), failed[:10])

    async def restart(self, agent_id: str) -> AgentHandle:
        self.require_engine()
        record = self.registry.get(agent_id)
        container_id = record.container_id
        if container_id is None or record.transitioning:
            raise AgentStateError(f"agent {agent_id!r} is being spawned or restarted")
        await self._bring_back(record, container_id, restart=True)
        return record.handle()

    # -- logs and metrics -------------------------------------------------------------------

    async def logs(
        self, agent_id: str, *, tail: int | None, since: float | None, timestamps: bool
    ) -> builtins.list[str]:
        container_id = self._container_of(agent_id)
        _check_tail(tail)
        return await self.backend.logs(container_id, tail=tail, since=since, timestamps=timestamps)

    def stream_logs(
        self, agent_id: str, *, tail: int | None, since: float | None, timestamps: bool
    ) -> AsyncIterator[str]:
        container_id = self._container_of(agent_id)
        _check_tail(tail)
        return self.backend.stream_logs(container_id, tail=tail, since=since, timestamps=timestamps)

    async def metrics(self, agent_id: str) -> MetricsResponse:
        record = self.registry.get(agent_id)
        container_id = self._container_of(agent_id)
        return await self._sampler.sample(
            record, container_id, host_cpus=self.require_engine().cpus
        )

    def _container_of(self, agent_id: str) -> str:
        self.require_engine()
        record = self.registry.get(agent_id)
        if record.container_id is None:
            raise ValidationError(f"agent {agent_id!r} has no container yet")
        return record.container_id

    # -- reconciliation hooks ---------------------------------------------------------------

    def adopt(self, states: Iterable[ContainerState]) -> None:
        """Make the registry match the engine's managed containers (start-up and resync)."""
        seen: set[str] = set()
        for state in states:
            labels = self.identity(state)
            if labels is None:
                continue
            seen.add(labels.id)
            record = self.registry.find(labels.id)
            if record is None:
                record = AgentRecord(labels=labels, status=AgentStatus.PENDING)
                self.registry.put(record)
            if record.transitioning:
                continue
            before = record.status
            record.observe(state)
            self._publish_transition(record, before)
        for record in self.registry:
            if record.id not in seen and not record.transitioning and not record.stopping:
                self.registry.drop(record.id)
                self.secrets.remove(record.id)
                self._publish("agent_stopped", record, reason="removed", exitCode=None)
        # Secret files of agents whose containers are gone (removed while the service was down),
        # except those that pooled containers have mounted.
        keep = [record.id for record in self.registry]
        self.secrets.prune(keep=keep + (self.pool.slot_dirs() if self.pool is not None else []))

    def identity(self, state: ContainerState) -> AgentLabels | None:
        """The agent a container is: its labels say, or a claim of the warm pool does."""
        return AgentLabels.decode(state.labels) or self.claims.labels(state.id)

    def agent_of_container(self, container_id: str) -> str | None:
        """The agent id of a claimed pooled container (its labels do not name it)."""
        labels = self.claims.labels(container_id)
        return labels.id if labels is not None else None

    def observe(self, state: ContainerState) -> None:
        labels = self.identity(state)
        if labels is None:
            return
        record = self.registry.find(labels.id)
        if record is None:
            record = AgentRecord(labels=labels, status=AgentStatus.PENDING)
            self.registry.put(record)
        if record.transitioning:
            record.state = state
            return
        before = record.status
        record.observe(state)
        self._publish_transition(record, before)

    def forget(self, agent_id: str) -> None:
        """The container is gone (removed behind our back, or by us)."""
        record = self.registry.find(agent_id)
        if record is None or record.transitioning or record.stopping:
            return
        self.registry.drop(agent_id)
        self.secrets.remove(agent_id)
        self._sampler.forget(agent_id)
        # An agent that already exited was reported then; only a live one is news.
        if record.status not in (AgentStatus.STOPPED, AgentStatus.ERROR):
            self._publish(
                "agent_stopped", record, reason="removed", exitCode=record.handle().exit_code
            )

    def touch(self, agent_id: str) -> None:
        """Note activity on an agent (it resets the idle timer)."""
        record = self.registry.find(agent_id)
        if record is not None:
            record.last_activity = time.time()

    async def remove_container(self, record: AgentRecord, reason: str) -> None:
        """Remove the container of an agent that is no longer wanted (janitor, gc)."""
        container_id = record.container_id
        if container_id is None or record.transitioning or record.stopping:
            return
        record.stopping = True
        try:
            await self.backend.remove(container_id, force=True)
        finally:
            record.stopping = False
        self.registry.drop(record.id)
        self.secrets.remove(record.id)
        self._sampler.forget(record.id)
        if record.status not in (AgentStatus.STOPPED, AgentStatus.ERROR):
            record.status = AgentStatus.ERROR
            self._publish("agent_error", record, error=reason)
        log.info("removed container of agent %s: %s", record.id, reason)

    async def auto_restart(self, record: AgentRecord) -> None:
        """Start a crashed agent's container again and wait until it is ready."""
        container_id = record.container_id
        if container_id is None or record.transitioning or record.stopping:
            return
        record.restart_count += 1
        await self._bring_back(
            record,
            container_id,
            # A container still running is unhealthy, not exited: it needs a restart.
            restart=record.state is not None and record.state.running,
            on_started=lambda: self._publish(
                "agent_started", record, reason="auto-restart", restartCount=record.restart_count
            ),
        )

    async def _bring_back(
        self,
        record: AgentRecord,
        container_id: str,
        *,
        restart: bool,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        """Restart (or start) an agent's container and wait until it is ready again.

        On failure the record takes whatever state the container is left in.
        """
        image = await self._image(record.labels.image, record.labels.type)
        record.transitioning = True
        record.status = AgentStatus.STARTING
        try:
            if restart:
                await self.backend.restart(container_id, self.settings.stop_grace_s)
            else:
                await self.backend.start(container_id)
            if on_started is not None:
                on_started()
            state = await wait_ready(
                self.backend,
                container_id,
                health_probe(image),
                timeout_s=self.settings.ready_timeout_s,
            )
        except BaseException:
            record.transitioning = False
            current = await self.backend.get(container_id)
            if current is not None:
                record.observe(current)
            raise
        record.transitioning = False
        record.probed_ready = True
        record.last_activity = time.time()
        record.observe(state)
        self._publish("agent_ready", record)

    async def probe_starting(self, record: AgentRecord) -> None:
        """One readiness probe for an agent Docker still calls starting."""
        container_id = record.container_id
        if container_id is None:
            return
        image = await self.backend.get_image(record.labels.image)
        probe = health_probe(image) if image else None
        if probe is None or not await probe_passes(self.backend, container_id, probe):
            return
        if record.status == AgentStatus.STARTING and not record.transitioning:
            record.probed_ready = True
            record.status = AgentStatus.READY
            self._publish("agent_ready", record)

    def _publish_transition(self, record: AgentRecord, before: AgentStatus) -> None:
        # An exit this service causes is reported by the operation that caused it.
        if record.status == before or record.stopping:
            return
        if record.status == AgentStatus.ERROR:
            self._publish("agent_error", record, error=record.error)
        elif record.status == AgentStatus.STOPPED:
            self._publish(
                "agent_stopped",
                record,
                reason="exited",
                exitCode=record.state.exit_code if record.state else None,
            )
        elif record.status == AgentStatus.READY:
            self._publish("agent_ready", record)

    def _publish(self, event: str, record: AgentRecord, **extra: Any) -> None:
        data: dict[str, Any] = {"agent": record.handle().model_dump(mode="json", by_alias=True)}
        data.update(extra)
        self.bus.publish(event, data, agent_id=record.id)


def _check_tail(tail: int | None) -> None:
    if tail is not None and not 0 <= tail <= MAX_LOG_TAIL:
        raise ValidationError(f"tail must be between 0 and {MAX_LOG_TAIL}")
