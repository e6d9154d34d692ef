"""Fail closed on the real engine: what the engine does not apply is a failed spawn.

The engine is real; the create body is altered on its way out (by the engine client's container
endpoints, handed to the backend), to make the engine do what a weaker host would: drop a limit
with a warning, or ignore a setting. The backend must refuse the container and remove it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest

from parallax_docker.backends.base import ContainerSpec
from parallax_docker.backends.docker.backend import DockerBackend
from parallax_docker.backends.docker.cgroups import CgroupReader
from parallax_docker.backends.docker.engine import Engine as EngineAPI
from parallax_docker.backends.docker.engine import EngineClient
from parallax_docker.backends.docker.engine.containers import Containers
from parallax_docker.errors import InsecureSpawnError
from tests.integration.conftest import SESSION
from tests.support.engine import Engine
from tests.support.images import BUSYBOX_IMAGE


class AlteringContainers(Containers):
    def __init__(
        self, client: EngineClient, alter: dict[str, Any], drop: tuple[str, ...] = ()
    ) -> None:
        super().__init__(client)
        self.alter = alter
        self.drop = drop

    async def create(self, name: str, config: Mapping[str, Any]) -> dict[str, Any]:
        host = dict(config["HostConfig"])
        host.update(self.alter)
        for key in self.drop:
            host.pop(key, None)
        return await super().create(name, {**config, "HostConfig": host})


@pytest.fixture
async def altering() -> AsyncIterator[Callable[..., DockerBackend]]:
    """A backend whose create body is altered: ``altering(alter, drop)``."""
    api = EngineAPI(EngineClient("/var/run/docker.sock"))

    def make(alter: dict[str, Any], drop: tuple[str, ...] = ()) -> DockerBackend:
        api.containers = AlteringContainers(api.client, alter, drop)
        return DockerBackend(api, CgroupReader(None))

    yield make
    await api.close()


def _spec(name: str) -> ContainerSpec:
    return ContainerSpec(
        name=name,
        image=BUSYBOX_IMAGE,
        labels={"test-session": SESSION},
        network="none",
        aliases=(),
        memory_bytes=64 * 1024 * 1024,
        nano_cpus=250_000_000,
        pids_limit=64,
        command=("sleep", "60"),
    )


async def test_engine_warnings_fail_the_create_and_remove_the_container(
    engine: Engine, altering: Callable[..., DockerBackend]
) -> None:
    backend = altering({"BlkioWeight": 500, "KernelMemory": 10_000_000})
    name = f"ptest-{SESSION}-warned"
    try:
        with pytest.raises(InsecureSpawnError) as caught:
            await backend.create(_spec(name))
        assert caught.value.code == "INSECURE_SPAWN"
        assert engine.inspect(name) is None
    finally:
        engine.remove_container(name)


@pytest.mark.parametrize(
    "dropped", ["ReadonlyRootfs", "CapDrop", "SecurityOpt", "PidsLimit", "Init", "LogConfig"]
)
async def test_a_setting_the_engine_did_not_apply_fails_the_create(
    engine: Engine, altering: Callable[..., DockerBackend], dropped: str
) -> None:
    backend = altering({}, drop=(dropped,))
    name = f"ptest-{SESSION}-drop-{dropped.lower()}"
    try:
        with pytest.raises(InsecureSpawnError):
            await backend.create(_spec(name))
        assert engine.inspect(name) is None
    finally:
        engine.remove_container(name)


async def test_unaltered_create_passes_verification(
    engine: Engine, altering: Callable[..., DockerBackend]
) -> None:
    backend = altering({})
    name = f"ptest-{SESSION}-clean"
    try:
        container_id = await backend.create(_spec(name))
        assert engine.inspect(container_id) is not None
    finally:
        engine.remove_container(name)
