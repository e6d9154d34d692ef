"""A real CLI's turns on the swarm, against the stand-in model services (tests/support/standins).

The stand-in runs as a container on the first manager, attached to the agents' overlay network
(it is attachable), so an agent on any node reaches it across the cluster; the test scripts it
through a port the first node publishes on its cluster address.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.conftest import SESSION
from tests.integration.swarm.conftest import NETWORK, Handle, SwarmService, container_on
from tests.support.cli_profiles import PROFILES, result_of, spawn_fields, turn, write_settings
from tests.support.polling import poll
from tests.support.standin_container import ensure_image
from tests.support.standins.client import Tenant, health
from tests.support.swarm import SwarmCluster

pytestmark = pytest.mark.slow

PROFILE = PROFILES["gemini"]  # the smallest CLI image over the base the echo agent shares
CONTROL_PORT = 18080


class SwarmStandin:
    def __init__(self, control_url: str, agent_url: str) -> None:
        self.control_url = control_url
        self.agent_url = agent_url


@pytest.fixture(scope="module")
def standin(swarm: SwarmCluster, swarm_service: SwarmService) -> Iterator[SwarmStandin]:
    ref = ensure_image()
    swarm.load_images(ref)
    node = swarm.nodes[0]
    name = f"pxs-standin-{SESSION}"
    swarm.docker(
        1, "run", "-d", "--name", name, "--network", NETWORK, "--network-alias", "standin",
        "-p", f"{node.address}:{CONTROL_PORT}:8080", "--read-only", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", "--memory", "256m", ref,
    )  # fmt: skip
    try:
        networks = json.loads(
            swarm.docker(1, "inspect", "-f", "{{json .NetworkSettings.Networks}}", name)
        )
        control = f"http://{node.address}:{CONTROL_PORT}"
        poll(lambda: health(control), bool, timeout_s=30, interval_s=0.2)
        # Its overlay address: a name takes a while to reach the other nodes (docs/swarm.md).
        yield SwarmStandin(control, f"http://{networks[NETWORK]['IPAddress']}:8080")
    finally:
        swarm.docker(1, "rm", "-f", name)


@pytest.fixture
def tenant(standin: SwarmStandin) -> Iterator[Tenant]:
    mine = Tenant(standin.control_url)
    yield mine
    mine.reset()


@pytest.fixture(scope="module")
def gemini_image(swarm: SwarmCluster, swarm_echo: str) -> str:
    # After the echo image: the base layers they share are on the manager already.
    ref = "parallax/agent-gemini:latest"
    swarm.load_images(ref)
    return ref


def test_a_cli_on_another_node_runs_turns_against_the_stand_in_model(
    swarm: SwarmCluster,
    swarm_service: SwarmService,
    swarm_spawn: Callable[..., Handle],
    standin: SwarmStandin,
    tenant: Tenant,
    gemini_image: str,
) -> None:
    manager = swarm.nodes[0].name
    fields: dict[str, Any] = spawn_fields(PROFILE, standin.agent_url, tenant.key, gemini_image)
    agents = [swarm_spawn(**fields) for _ in range(2)]
    remote = next((a for a in agents if a["node"] != manager), None)
    assert remote is not None, [a["node"] for a in agents]
    index, inspect = container_on(swarm, remote)
    node = swarm.engine(index)
    try:
        write_settings(node, inspect["Id"], PROFILE)
    finally:
        node.close()
    tenant.answer("The answer is 42.", input_tokens=321, output_tokens=17)
    answer = turn(swarm_service.api, remote["id"], "What is six times seven?")
    assert answer["type"] == "response", json.dumps(answer)[:3000]
    assert answer["content"] == "The answer is 42."
    result = result_of(answer)
    assert result["status"] == "completed" and result["sessionId"]
    main = tenant.requests(main_only=True)
    assert len(main) == 1 and any("six times seven" in t for t in main[0]["transcript"])
    # The session carries on to the next turn, on the same node.
    tenant.answer("Still 42.")
    again = turn(swarm_service.api, remote["id"], "And again?")
    assert again["content"] == "Still 42."
    assert result_of(again)["sessionId"] == result["sessionId"]
