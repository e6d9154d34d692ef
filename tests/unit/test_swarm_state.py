"""An agent's state on a Swarm from its service, latest task, node and container (pure)."""

from __future__ import annotations

from typing import Any

from parallax_docker.backends.base import NodeInfo
from parallax_docker.backends.swarm.state import is_lost, latest_task, service_state


def service(replicas: int = 1) -> dict[str, Any]:
    return {
        "ID": "svc1",
        "CreatedAt": "2026-01-01T00:00:00Z",
        "Spec": {
            "Name": "parallax-agent-1",
            "Labels": {"parallax.agent.id": "agent-1"},
            "Mode": {"Replicated": {"Replicas": replicas}},
            "TaskTemplate": {
                "ContainerSpec": {"Image": "reg/a@sha256:1"},
                "Resources": {"Limits": {"MemoryBytes": 64, "NanoCPUs": 5, "Pids": 9}},
            },
        },
    }


def task(
    state: str, desired: str = "running", node: str | None = "n1", **extra: Any
) -> dict[str, Any]:
    status: dict[str, Any] = {"State": state, "Timestamp": "2026-01-01T00:01:00Z"}
    status.update(extra)
    return {"ID": "t1", "NodeID": node, "DesiredState": desired, "Status": status, "CreatedAt": "2"}


def node(state: str = "ready", availability: str = "active") -> NodeInfo:
    return NodeInfo("n1", "host-1", "manager", state, availability, "10.0.0.1", 1, 1.0)


def test_a_service_never_started_reads_as_created() -> None:
    state = service_state(service(0), None, None, None)
    assert (state.id, state.status, state.running) == ("svc1", "created", False)
    assert (state.memory_bytes, state.nano_cpus, state.pids_limit) == (64, 5, 9)
    assert state.labels == {"parallax.agent.id": "agent-1"}


def test_the_container_on_the_node_gives_the_details_under_the_service_id() -> None:
    container = {
        "Id": "c1",
        "Name": "/parallax-agent-1.1.xyz",
        "Config": {"Labels": {"com.docker.swarm.task.id": "t1"}},
        "State": {"Status": "running", "Running": True, "Health": {"Status": "healthy"}},
        "HostConfig": {"Memory": 64},
    }
    state = service_state(service(), task("running"), node(), container)
    assert (state.id, state.name, state.node) == ("svc1", "parallax-agent-1", "host-1")
    assert state.running and state.health == "healthy"
    assert state.labels == {"parallax.agent.id": "agent-1"} and not state.lost


def test_a_task_on_a_node_that_went_down_is_lost() -> None:
    state = service_state(service(), task("running", "shutdown"), node("down"), None)
    assert state.lost and not state.running and state.status == "exited"
    assert state.error == "node host-1 is down"


def test_a_task_shut_down_by_a_drain_is_lost() -> None:
    drained = node(availability="drain")
    assert is_lost(service(), task("running", "shutdown"), drained)
    state = service_state(service(), task("shutdown", "shutdown"), drained, None)
    assert state.lost and state.error == "node host-1 is drained"


def test_an_exit_is_an_exit_even_on_a_node_that_is_down_now() -> None:
    ended = task("failed", "shutdown", ContainerStatus={"ExitCode": 3})
    assert not is_lost(service(), ended, node("down"))
    state = service_state(service(), ended, node("down"), None)
    assert (state.status, state.exit_code, state.lost) == ("exited", 3, False)


def test_a_service_the_runtime_scaled_down_is_not_lost() -> None:
    assert not is_lost(service(0), task("running", "shutdown"), node("down"))


def test_a_task_waiting_for_a_node_is_not_lost() -> None:
    assert not is_lost(service(), task("pending", node=None), None)
    assert service_state(service(), task("pending", node=None), None, None).status == "created"


def test_a_running_task_whose_node_did_not_answer_reads_running() -> None:
    state = service_state(service(), task("running"), node(), None)
    assert state.running and state.status == "running"


def test_the_latest_task_is_the_one_made_last() -> None:
    old = {"ID": "a", "CreatedAt": "2026-01-01T00:00:01Z", "Version": {"Index": 9}}
    new = {"ID": "b", "CreatedAt": "2026-01-01T00:00:02Z", "Version": {"Index": 3}}
    assert latest_task([new, old]) == new
    assert latest_task([]) is None
