"""How engine events update agents without an inspect where the event says enough."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from parallax_docker.backends.base import ContainerEvent, ContainerState
from parallax_docker.config import load_settings
from parallax_docker.models import AgentStatus
from parallax_docker.runtime import lifecycle
from parallax_docker.runtime.agent_record import AgentRecord
from parallax_docker.runtime.engine_link import EngineLink
from parallax_docker.runtime.events import EventBus, Publisher
from parallax_docker.runtime.labels import AgentLabels
from parallax_docker.runtime.metrics import MetricsSampler
from parallax_docker.runtime.observer import Observer
from parallax_docker.runtime.pool.claims import ClaimStore
from parallax_docker.runtime.reconciler import Reconciler
from parallax_docker.runtime.registry import Registry
from parallax_docker.runtime.telemetry import Telemetry
from tests.unit.fakes import FakeBackend, FakeSecrets, as_backend, running_state

CID = "c" * 64


class CountingBackend(FakeBackend):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get(self, container_id: str) -> ContainerState | None:
        self.reads += 1
        return await super().get(container_id)


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        settings = load_settings(
            environ={
                "PARALLAX_STATE_DIR": str(tmp_path / "state"),
                "PARALLAX_SECRETS_DIR": str(tmp_path / "secrets"),
            }
        )
        self.fake = CountingBackend()
        self.registry = Registry()
        self.seen: list[ContainerState] = []
        observer = Observer(
            registry=self.registry,
            claims=ClaimStore(tmp_path / "claims"),
            secrets=FakeSecrets(),
            publisher=Publisher(EventBus()),
            sampler=MetricsSampler(self.fake),
        )
        original = observer.observe

        def observe(state: ContainerState) -> None:
            self.seen.append(state)
            original(state)

        observer.observe = observe  # type: ignore[method-assign]
        backend = as_backend(self.fake)
        self.reconciler = Reconciler(
            backend=backend,
            engine=EngineLink(backend, settings.docker_network, {}),
            observer=observer,
            registry=self.registry,
            selector={},
            telemetry=Telemetry(),
        )
        labels = AgentLabels(
            id="agent-1",
            name="n",
            type="custom",
            image="img",
            network="net",
            memory_bytes=1 << 26,
            nano_cpus=10**8,
            pids_limit=512,
            created_at="2026-01-01T00:00:00Z",
        )
        state = running_state(CID, labels.encode())
        self.fake.containers[CID] = state
        self.record = AgentRecord(labels=labels, status=AgentStatus.READY, state=state)
        self.registry.put(self.record)


def _event(action: str, record: AgentRecord, **attributes: str) -> ContainerEvent:
    return ContainerEvent(
        action=action,
        container_id=CID,
        labels={**record.labels.encode(), **attributes},
        time_ns=1_800_000_000 * 10**9,
        exit_code=137 if action == "die" else None,
    )


async def test_a_die_event_reports_the_exit_before_any_inspect(tmp_path: Path) -> None:
    t = Setup(tmp_path)
    t.fake.containers[CID] = replace(
        t.fake.containers[CID], running=False, status="exited", exit_code=137
    )
    reads: list[int] = []
    original = t.reconciler._observer.observe

    def observe(state: ContainerState) -> None:
        reads.append(t.fake.reads)
        original(state)

    t.reconciler._observer.observe = observe  # type: ignore[method-assign]
    await t.reconciler._apply(_event("die", t.record))
    # First from the event, before any read; then from the inspect that follows.
    assert [s.exit_code for s in t.seen] == [137, 137]
    assert reads == [0, 1]
    assert t.record.status == AgentStatus.ERROR


async def test_an_oom_before_the_die_makes_it_a_resource_limit(tmp_path: Path) -> None:
    t = Setup(tmp_path)
    # The inspect would find the container gone; only the events speak.
    t.fake.containers.clear()
    await t.reconciler._apply(_event("oom", t.record))
    await t.reconciler._apply(_event("die", t.record))
    assert [s.oom_killed for s in t.seen] == [True]
    assert t.record.error_code == "RESOURCE_LIMIT"


async def test_kill_and_stop_events_are_not_read_again(tmp_path: Path) -> None:
    t = Setup(tmp_path)
    await t.reconciler._apply(_event("kill", t.record, signal="15"))
    await t.reconciler._apply(_event("stop", t.record))
    assert t.fake.reads == 0


async def test_a_health_event_updates_health_without_an_inspect(tmp_path: Path) -> None:
    t = Setup(tmp_path)
    await t.reconciler._apply(_event("health_status", t.record, health_status="unhealthy"))
    assert t.fake.reads == 0
    assert t.record.state is not None and t.record.state.health == "unhealthy"
    assert t.record.status == AgentStatus.ERROR


async def test_events_of_an_agent_being_stopped_are_left_to_the_stop(tmp_path: Path) -> None:
    t = Setup(tmp_path)
    lifecycle.stop_begun(t.record)
    await t.reconciler._apply(_event("die", t.record))
    assert t.fake.reads == 0
