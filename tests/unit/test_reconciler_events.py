"""How engine events update agents without an inspect where the event says enough."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from parallax_docker.backends.base import ContainerEvent, ContainerState
from parallax_docker.config import load_settings
from parallax_docker.models import AgentStatus
from parallax_docker.runtime.labels import AgentLabels
from parallax_docker.runtime.reconciler import Reconciler
from parallax_docker.runtime.registry import AgentRecord
from parallax_docker.runtime.service import AgentService
from tests.unit.fakes import FakeBackend, as_backend, running_state

CID = "c" * 64


class CountingBackend(FakeBackend):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get(self, container_id: str):  # type: ignore[no-untyped-def]
        self.reads += 1
        return await super().get(container_id)


def _setup(tmp_path: Path) -> tuple[AgentService, Reconciler, CountingBackend, AgentRecord]:
    settings = load_settings(
        environ={
            "PARALLAX_STATE_DIR": str(tmp_path / "state"),
            "PARALLAX_SECRETS_DIR": str(tmp_path / "secrets"),
        }
    )
    fake = CountingBackend()
    service = AgentService(settings, as_backend(fake))
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
    fake.containers[CID] = state
    record = AgentRecord(labels=labels, status=AgentStatus.READY, state=state)
    service.registry.put(record)
    return service, Reconciler(service, as_backend(fake)), fake, record


def _event(action: str, record: AgentRecord, **attributes: str) -> ContainerEvent:
    return ContainerEvent(
        action=action,
        container_id=CID,
        labels={**record.labels.encode(), **attributes},
        time_ns=1_800_000_000 * 10**9,
        exit_code=137 if action == "die" else None,
    )


async def test_a_die_event_reports_the_exit_before_any_inspect(tmp_path: Path) -> None:
    service, reconciler, fake, record = _setup(tmp_path)
    fake.containers[CID] = replace(
        fake.containers[CID], running=False, status="exited", exit_code=137
    )
    seen: list[tuple[int | None, int]] = []
    original = service.observe

    def observe(state: ContainerState) -> None:
        seen.append((state.exit_code, fake.reads))
        original(state)

    service.observe = observe  # type: ignore[method-assign]
    await reconciler._apply(_event("die", record))
    # First from the event, before any read; then from the inspect that follows.
    assert seen == [(137, 0), (137, 1)]
    assert record.status == AgentStatus.ERROR


async def test_an_oom_before_the_die_makes_it_a_resource_limit(tmp_path: Path) -> None:
    service, reconciler, fake, record = _setup(tmp_path)
    # The inspect would find the container gone; only the events speak.
    fake.containers.clear()
    codes = []
    original = service.observe
    service.observe = lambda state: (codes.append(state.oom_killed), original(state))  # type: ignore[method-assign]
    await reconciler._apply(_event("oom", record))
    await reconciler._apply(_event("die", record))
    assert codes == [True]
    assert record.error_code == "RESOURCE_LIMIT"


async def test_kill_and_stop_events_are_not_read_again(tmp_path: Path) -> None:
    _, reconciler, fake, record = _setup(tmp_path)
    await reconciler._apply(_event("kill", record, signal="15"))
    await reconciler._apply(_event("stop", record))
    assert fake.reads == 0


async def test_a_health_event_updates_health_without_an_inspect(tmp_path: Path) -> None:
    _, reconciler, fake, record = _setup(tmp_path)
    await reconciler._apply(_event("health_status", record, health_status="unhealthy"))
    assert fake.reads == 0
    assert record.state is not None and record.state.health == "unhealthy"
    assert record.status == AgentStatus.ERROR


async def test_events_of_an_agent_being_stopped_are_left_to_the_stop(tmp_path: Path) -> None:
    _, reconciler, fake, record = _setup(tmp_path)
    record.stopping = True
    await reconciler._apply(_event("die", record))
    assert fake.reads == 0
