"""An agent whose machine the platform lost: an error, reported once as agent_stopped
(reason node_lost), brought back by autoRestart; and the nodes in GET /health."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from parallax_docker.backends.base import NodeInfo
from parallax_docker.models import AgentStatus
from parallax_docker.runtime import lifecycle
from parallax_docker.runtime.labels import AgentLabels
from tests.unit.fakes import engine_info, running_state
from tests.unit.harness import IMAGE, harness, request


def labels() -> AgentLabels:
    return AgentLabels(
        id="agent-1",
        name="one",
        type="custom",
        image="img",
        network="net",
        memory_bytes=1,
        nano_cpus=1,
        pids_limit=1,
        created_at="2026-01-01T00:00:00+00:00",
    )


def test_a_lost_node_is_an_error_reported_as_agent_stopped_node_lost() -> None:
    record = lifecycle.adopted(labels())
    running = replace(running_state("c1", labels().encode()), node="host-1")
    lifecycle.observed(record, running)
    lost = replace(running, status="exited", running=False, lost=True)
    events = lifecycle.observed(record, lost)
    assert record.status == AgentStatus.ERROR
    assert record.error_code == "NODE_LOST"
    assert [(e.event, e.data["reason"]) for e in events] == [("agent_stopped", "node_lost")]
    assert events[0].data["agent"]["node"] == "host-1"
    # Seen again, it is no news.
    assert lifecycle.observed(record, lost) == []


def test_losing_the_node_after_an_exit_there_is_still_news() -> None:
    record = lifecycle.adopted(labels())
    exited = replace(
        running_state("c1", labels().encode()), status="exited", running=False, exit_code=143
    )
    assert [e.event for e in lifecycle.observed(record, exited)] == ["agent_error"]
    events = lifecycle.observed(record, replace(exited, exit_code=None, lost=True))
    assert [(e.event, e.data["reason"]) for e in events] == [("agent_stopped", "node_lost")]


def test_a_stop_under_way_is_not_a_lost_node() -> None:
    record = lifecycle.adopted(labels())
    lifecycle.observed(record, running_state("c1", labels().encode()))
    lifecycle.stop_begun(record)
    lost = replace(
        running_state("c1", labels().encode()), running=False, status="exited", lost=True
    )
    assert lifecycle.observed(record, lost) == []


async def test_health_lists_the_nodes_with_the_agents_running_on_each(tmp_path: Path) -> None:
    nodes = (
        NodeInfo("a", "host-a", "manager", "ready", "active", "10.0.0.1", 1, 1.0, leader=True),
        NodeInfo("b", "host-b", "worker", "down", "active", "10.0.0.2", 1, 1.0),
    )
    async with harness(tmp_path) as h:
        h.fake.info = replace(engine_info(), platform="swarm", nodes=nodes)
        handle = await h.runtime.spawner.spawn(request(image=IMAGE))
        record = h.runtime.registry.get(handle.id)
        assert record.state is not None
        lifecycle.observed(record, replace(record.state, node="host-a"))
        ok, health = await h.runtime.queries.health()
    assert ok and health.runtime.type == "swarm"
    assert (
        health.message == "swarm runtime is healthy: 1 of 2 nodes take agents (1 down or drained)"
    )
    assert health.nodes is not None
    assert [(n.name, n.state, n.agents, n.leader) for n in health.nodes] == [
        ("host-a", "ready", 1, True),
        ("host-b", "down", 0, False),
    ]


async def test_one_engine_lists_no_nodes(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        ok, health = await h.runtime.queries.health()
    assert ok and health.nodes is None and health.runtime.type == "docker"
