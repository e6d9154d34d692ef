"""The cluster moving under the agents, on a real 3-node swarm: the runtime restarted against
another manager, volumes that pin agents to a node, a node that lacks a control, a node drained
and a node that dies. Each test leaves the cluster as it found it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from parallax_docker.backends.swarm.translate import TMPFS_LABEL
from tests.integration.conftest import PREFIX, SESSION, agent_body
from tests.integration.swarm.conftest import (
    INSTANCE,
    Handle,
    SwarmService,
    container_on,
    node_exec,
    wait_agent,
    wait_node,
)
from tests.support.polling import poll
from tests.support.swarm import SwarmCluster

pytestmark = pytest.mark.slow


def _services(swarm: SwarmCluster) -> set[str]:
    out = swarm.docker(1, "service", "ls", "--filter", f"label=parallax.instance={INSTANCE}", "-q")
    return set(out.split())


def _on(agents: list[Handle], node: str) -> list[Handle]:
    return [a for a in agents if a["node"] == node]


def _reasons(service: SwarmService, agent_id: str) -> list[str | None]:
    return [
        e["data"].get("reason") for e in service.events(agent_id) if e["event"] == "agent_stopped"
    ]


def test_runtime_restarted_on_another_manager_adopts_every_agent(
    swarm: SwarmCluster, swarm_service: SwarmService, swarm_spawn: Callable[..., Handle]
) -> None:
    agents = [swarm_spawn(env={"TOKEN": "kept-across-restarts"}) for _ in range(3)]
    before = _services(swarm)
    swarm_service.stop()
    try:
        swarm_service.start(manager=2)  # another manager, with a state folder of its own
        for agent in agents:
            # Adopted from its service's labels; ready once the runtime's own probe passes.
            seen = wait_agent(swarm_service.api, agent["id"], lambda h: h["status"] == "ready")
            assert (seen["node"], seen["name"], seen["envKeys"]) == (
                agent["node"],
                agent["name"],
                ["TOKEN"],
            )
            logs = swarm_service.api.get(f"/agents/{agent['id']}/logs")
            assert logs.status_code == 200 and "agent-up" in logs.json()["logs"]
        # Adopted, not made again: the cluster holds the very same services.
        assert _services(swarm) == before
        # This manager never had the image: it comes from the cluster's registry.
        restarted = swarm_service.api.post(f"/agents/{agents[1]['id']}/restart")
        assert restarted.status_code == 200, restarted.text
        assert restarted.json()["status"] == "ready"
        # The adopted agents obey: one is stopped through the new manager.
        gone = agents[0]["id"]
        assert swarm_service.api.delete(f"/agents/{gone}").status_code == 204
        assert f"parallax-{gone}" not in swarm.docker(1, "service", "ls", "--format", "{{.Name}}")
    finally:
        swarm_service.stop()
        swarm_service.start(manager=1)


def test_agents_of_one_execution_share_a_node_and_its_home_volume(
    swarm: SwarmCluster, swarm_api: httpx.Client, swarm_spawn: Callable[..., Handle]
) -> None:
    execution = f"exec-{SESSION}"
    first = swarm_spawn(executionId=execution)
    second = swarm_spawn(executionId=execution)
    assert first["node"] == second["node"]
    index = swarm.node_of(first["node"])
    home = f"parallax-exec-{INSTANCE}-{execution}"
    holders = [n.index for n in swarm.nodes if home in swarm.docker(n.index, "volume", "ls", "-q")]
    assert holders == [index]
    # What one writes to its home, the other reads.
    _, one = container_on(swarm, first)
    _, two = container_on(swarm, second)
    assert node_exec(swarm, index, one["Id"], "sh", "-c", "echo shared > ~/note")[0] == 0
    assert node_exec(swarm, index, two["Id"], "cat", "/home/agent/note") == (0, "shared\n")
    for agent in (first, second):
        assert swarm_api.delete(f"/agents/{agent['id']}").status_code == 204
    removed = swarm_api.delete(f"/executions/{execution}/resources")
    assert removed.status_code == 200, removed.text
    assert home not in swarm.docker(index, "volume", "ls", "-q")


def test_a_volume_on_two_nodes_is_refused_with_nothing_made(
    swarm: SwarmCluster, swarm_api: httpx.Client
) -> None:
    name = f"{PREFIX}-split"
    labels = ["--label", "parallax.managed=true", "--label", f"parallax.instance={INSTANCE}"]
    for index in (2, 3):
        swarm.docker(index, "volume", "create", *labels, name)
    try:
        before = _services(swarm)
        response = swarm_api.post("/agents", json=agent_body(volumes=[f"{name}:/data"]))
        assert response.status_code == 409, response.text
        body = response.json()
        assert body["code"] == "PLACEMENT_CONFLICT" and body["resolution"]
        assert name in body["error"]
        assert _services(swarm) == before
    finally:
        for index in (2, 3):
            swarm.docker(index, "volume", "rm", name)


def test_network_none_is_an_internal_network_of_the_agent_alone(
    swarm: SwarmCluster, swarm_spawn: Callable[..., Handle]
) -> None:
    other = swarm_spawn()
    alone = swarm_spawn(network="none")
    assert alone["network"] == "none"
    index, inspect = container_on(swarm, alone)
    networks = [n for n in inspect["NetworkSettings"]["Networks"] if n != "docker_gwbridge"]
    assert networks == [f"parallax-isolated-{alone['id']}"]
    details = json.loads(swarm.docker(1, "network", "inspect", networks[0]))[0]
    assert details["Internal"] is True and details["Driver"] == "overlay"
    code, _ = node_exec(
        swarm,
        index,
        inspect["Id"],
        "timeout",
        "3",
        "wget",
        "-q",
        "-O",
        "-",
        f"http://{other['name']}:8080/",
    )
    assert code != 0


@pytest.fixture
def only_node_3(swarm: SwarmCluster) -> Iterator[None]:
    """Nodes 1 and 2 drained for the test: whatever is spawned runs on node 3."""
    for index in (1, 2):
        swarm.availability(index, "drain")
    try:
        yield
    finally:
        for index in (1, 2):
            swarm.availability(index, "active")


def test_a_node_without_no_new_privileges_is_refused(
    swarm: SwarmCluster, swarm_api: httpx.Client, only_node_3: None
) -> None:
    node = swarm.nodes[2]
    swarm.stop_node(3)
    swarm.start_node(3, without=("no-new-privileges",))
    try:
        wait_node(swarm, node.name, "ready")
        before = _services(swarm)
        secrets_before = swarm.docker(1, "secret", "ls", "-q")
        tmpfs = ("volume", "ls", "-q", "--filter", f"label={TMPFS_LABEL}")
        volumes_before = swarm.docker(3, *tmpfs)
        response = swarm_api.post("/agents", json=agent_body(env={"K": "v"}))
        assert response.status_code == 500, response.text
        body = response.json()
        assert body["code"] == "INSECURE_SPAWN"
        assert "no-new-privileges" in body["error"] and node.name in body["error"]
        # Refused, and nothing of it is left: no service, no secret.
        assert _services(swarm) == before
        assert swarm.docker(1, "secret", "ls", "-q") == secrets_before
        # Nor its tmpfs volumes on the node: those of its container go with it, and the unused
        # twins the node made before the container are swept.
        poll(lambda: swarm.docker(3, *tmpfs), lambda v: v == volumes_before, 60, 0.5)
    finally:
        swarm.stop_node(3)
        swarm.start_node(3)
        wait_node(swarm, node.name, "ready")


def test_a_drained_node_is_reported_and_its_agents_re_placed(
    swarm: SwarmCluster, swarm_service: SwarmService, swarm_spawn: Callable[..., Handle]
) -> None:
    keepers = [swarm_spawn(autoRestart=True) for _ in range(3)]
    node = swarm.nodes[1]
    moved = _on(keepers, node.name)
    assert moved, [a["node"] for a in keepers]
    swarm.availability(2, "drain")
    try:
        health = swarm_service.api.get("/health").json()
        assert {n["name"]: n["availability"] for n in health["nodes"]}[node.name] == "drain"
        for agent in moved:
            back = wait_agent(
                swarm_service.api,
                agent["id"],
                lambda h: h["status"] == "ready" and h["node"] not in (None, node.name),
            )
            assert back["restartCount"] >= 1
            assert "node_lost" in _reasons(swarm_service, agent["id"])
        for agent in keepers:
            if agent not in moved:
                still = swarm_service.api.get(f"/agents/{agent['id']}").json()
                assert (still["node"], still["restartCount"]) == (agent["node"], 0)
    finally:
        swarm.availability(2, "active")


def test_a_node_stopped_by_its_operator_is_reported_and_its_agents_re_placed(
    swarm: SwarmCluster, swarm_service: SwarmService, swarm_spawn: Callable[..., Handle]
) -> None:
    keepers = [swarm_spawn(autoRestart=True) for _ in range(3)]
    node = swarm.nodes[1]
    moved = _on(keepers, node.name)
    assert moved, [a["node"] for a in keepers]
    swarm.stop_node(2)  # its engine stops its containers first, then the cluster loses it
    try:
        wait_node(swarm, node.name, "down")
        for agent in moved:
            back = wait_agent(
                swarm_service.api,
                agent["id"],
                lambda h: h["status"] == "ready" and h["node"] not in (None, node.name),
            )
            assert back["restartCount"] >= 1
            # The exit its engine caused may be told first; the loss of the node is told too.
            assert "node_lost" in _reasons(swarm_service, agent["id"])
    finally:
        swarm.start_node(2)
        wait_node(swarm, node.name, "ready")


def test_a_node_that_dies_is_reported_and_its_agents_re_placed(
    swarm: SwarmCluster, swarm_service: SwarmService, swarm_spawn: Callable[..., Handle]
) -> None:
    keepers = [swarm_spawn(autoRestart=True) for _ in range(3)]
    plain = [swarm_spawn() for _ in range(3)]
    node = swarm.nodes[2]
    moved, stranded = _on(keepers, node.name), _on(plain, node.name)
    assert moved and stranded, [a["node"] for a in keepers + plain]
    swarm.kill_node(3)
    try:
        wait_node(swarm, node.name, "down")
        for agent in moved:
            back = wait_agent(
                swarm_service.api,
                agent["id"],
                lambda h: h["status"] == "ready" and h["node"] not in (None, node.name),
            )
            assert back["restartCount"] >= 1
            assert "node_lost" in _reasons(swarm_service, agent["id"])
            assert container_on(swarm, back)[1]["State"]["Running"]
        for agent in stranded:
            lost = wait_agent(swarm_service.api, agent["id"], lambda h: h["status"] == "error")
            assert lost["errorCode"] == "NODE_LOST" and lost["node"] == node.name
            assert _reasons(swarm_service, agent["id"]) == ["node_lost"]
        health = swarm_service.api.get("/health").json()
        assert health["healthy"] is True
        states = {n["name"]: n["state"] for n in health["nodes"]}
        assert states[node.name] == "down"
        assert "down or drained" in health["message"]
    finally:
        swarm.start_node(3)
        wait_node(swarm, node.name, "ready")
    # Back on its feet, a lost agent can be restarted by hand.
    again = swarm_service.api.post(f"/agents/{stranded[0]['id']}/restart")
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "ready"
