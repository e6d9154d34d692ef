"""Secret env delivery on a Swarm: held until the service is made, then Swarm secrets."""

from __future__ import annotations

import base64
from typing import Any, cast

import pytest

from parallax_docker.backends.base import ContainerSpec
from parallax_docker.backends.swarm.engine import SwarmAPI
from parallax_docker.backends.swarm.secrets import SECRET_KEY_LABEL, SwarmSecrets
from parallax_docker.errors import ConfigError
from tests.unit.fakes import image


class FakeAPI:
    """The manager's secret endpoints, in memory."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.secrets: dict[str, tuple[str, bytes, dict[str, str]]] = {}
        self._fail_at = fail_at

    async def create_secret(self, name: str, data: str, labels: dict[str, str]) -> str:
        if self._fail_at is not None and len(self.secrets) == self._fail_at:
            raise ConfigError("the manager refused")
        secret_id = f"id-{len(self.secrets)}"
        self.secrets[secret_id] = (name, base64.b64decode(data), labels)
        return secret_id

    async def remove_secret(self, secret_id: str) -> None:
        del self.secrets[secret_id]


def store(api: FakeAPI) -> SwarmSecrets:
    return SwarmSecrets(cast(SwarmAPI, api), "inst")


def spec_with(mounts: Any, user: str | None = "1000:1000") -> ContainerSpec:
    return ContainerSpec(
        name="parallax-agent-1",
        image="img",
        labels={"parallax.managed": "true", "parallax.instance": "inst", "other": "x"},
        network="net",
        aliases=(),
        memory_bytes=1,
        nano_cpus=1,
        pids_limit=1,
        user=user,
        mounts=tuple(mounts),
    )


async def test_deliver_keeps_values_out_of_the_mounts_and_the_spec() -> None:
    secrets = store(FakeAPI())
    delivered = secrets.deliver(
        "agent-1", {"API_KEY": "s3cret"}, image(), image_ref="img", command=None, uid=1000
    )
    assert delivered is not None
    assert [(m.kind, m.target, m.source) for m in delivered.mounts] == [
        ("secret", "/run/parallax/env", "agent-1/env")
    ]
    assert "s3cret" not in repr(delivered)
    assert delivered.entrypoint is None  # the project image loads the file itself


async def test_an_image_without_the_entrypoint_gets_env_sh_and_a_wrapper() -> None:
    foreign = image()
    foreign = type(foreign)(**{**foreign.__dict__, "labels": {}, "entrypoint": ("/app",)})
    delivered = store(FakeAPI()).deliver(
        "agent-1", {"A": "1"}, foreign, image_ref="img", command=None, uid=None
    )
    assert delivered is not None
    assert [m.target for m in delivered.mounts] == ["/run/parallax/env", "/run/parallax/env.sh"]
    assert delivered.entrypoint is not None and delivered.entrypoint[0] == "/bin/sh"


async def test_no_env_means_no_secret() -> None:
    assert store(FakeAPI()).deliver("a", {}, image(), image_ref="i", command=None, uid=1) is None


async def test_materialize_makes_owner_only_swarm_secrets_labelled_with_the_agent() -> None:
    api = FakeAPI()
    secrets = store(api)
    delivered = secrets.deliver(
        "agent-1", {"API_KEY": "s3cret"}, image(), image_ref="img", command=None, uid=1000
    )
    assert delivered is not None
    files = await secrets.materialize(spec_with(delivered.mounts))
    assert [(f.target, f.uid, f.mode) for f in files] == [("/run/parallax/env", "1000", 0o400)]
    name, data, labels = api.secrets[files[0].secret_id]
    assert name.startswith("parallax-agent-1-env-")
    assert data == b"API_KEY=s3cret\0"
    assert labels == {
        "parallax.managed": "true",
        "parallax.instance": "inst",
        SECRET_KEY_LABEL: "agent-1",
    }
    # Once the service runs, the values are no longer held in the service.
    secrets.settled("agent-1")
    with pytest.raises(ConfigError):
        await secrets.materialize(spec_with(delivered.mounts))


async def test_a_failed_materialize_removes_the_secrets_it_made() -> None:
    foreign = image()
    foreign = type(foreign)(**{**foreign.__dict__, "labels": {}, "entrypoint": ("/app",)})
    api = FakeAPI(fail_at=1)
    secrets = store(api)
    delivered = secrets.deliver("agent-1", {"A": "1"}, foreign, image_ref="i", command=None, uid=1)
    assert delivered is not None and len(delivered.mounts) == 2
    with pytest.raises(ConfigError):
        await secrets.materialize(spec_with(delivered.mounts))
    assert api.secrets == {}
