"""A runtime on the fake platform, for unit tests of its parts working together.

The background loops are not started: a test drives the parts itself (a sync, a janitor pass,
a recovery) so that what it checks does not depend on timing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parallax_docker.backends.base import ContainerState
from parallax_docker.config import Settings, load_settings
from parallax_docker.models import SpawnRequest
from parallax_docker.runtime.events import RuntimeEvent, Subscription
from parallax_docker.runtime.runtime import Runtime
from parallax_docker.runtime.store import Store
from tests.unit.fakes import FakeBackend, FakeDeployment, as_deployment, image

IMAGE = "parallax/agent-claude:latest"


def settings_for(tmp_path: Path, **env: str) -> Settings:
    return load_settings(
        {
            "PARALLAX_STATE_DIR": str(tmp_path / "state"),
            "PARALLAX_SECRETS_DIR": str(tmp_path / "secrets"),
            "PARALLAX_READY_TIMEOUT_S": "2",
            **env,
        }
    )


@dataclass
class Harness:
    runtime: Runtime
    deployment: FakeDeployment
    events: Subscription

    @property
    def fake(self) -> FakeBackend:
        return self.deployment.fake

    def drain(self) -> list[RuntimeEvent]:
        """Every event published since the last drain."""
        taken = []
        while not self.events._queue.empty():
            taken.append(self.events._queue.get_nowait())
        return taken

    def names(self) -> list[str]:
        return [event.event for event in self.drain()]

    def sync(self) -> None:
        """What the reconciler does on a (re)sync, without its loop: adopt, take orphans."""
        self.runtime.reconciler._observer.adopt(list(self.fake.containers.values()))
        self.runtime.after_sync()
        self.runtime.engine.ready(self.fake.info)

    def container_of(self, agent_id: str) -> ContainerState:
        record = self.runtime.registry.get(agent_id)
        assert record.container_id is not None
        return self.fake.containers[record.container_id]


def request(**fields: Any) -> SpawnRequest:
    body: dict[str, Any] = {"name": "n-" + str(fields.get("id", "x")), "type": "claude"}
    body.update(fields)
    return SpawnRequest.model_validate(body)


@asynccontextmanager
async def harness(
    tmp_path: Path, *, warm: bool = True, ready: bool = True, **env: str
) -> AsyncIterator[Harness]:
    deployment = FakeDeployment(warm=warm)
    deployment.fake.images[IMAGE] = image()
    store = Store(":memory:")
    runtime = Runtime(settings_for(tmp_path, **env), as_deployment(deployment), store=store)
    await store.open()
    runtime.claims.load()
    events = runtime.bus.subscribe()
    if ready:
        runtime.engine.ready(deployment.fake.info)
    try:
        yield Harness(runtime, deployment, events)
    finally:
        await runtime.recovery.stop()
        await runtime.janitor.stop()
        await runtime.threads.stop()
        await runtime.messaging.close()
        events.close()
        await store.close()
