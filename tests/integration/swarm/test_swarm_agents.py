"""Agents on a real 3-node Docker Swarm: spread, named across nodes, hardened on the node that
runs them, their secrets as Swarm secrets, logs, turns and terminals wherever they run."""

from __future__ import annotations

import io
import json
import ssl
import tarfile
import time
from collections.abc import Callable

import httpx
import pytest
from websockets.sync.client import connect

from parallax_docker.backends.capabilities import BuildDone, BuildOutput
from parallax_docker.backends.factory import create_deployment
from parallax_docker.backends.swarm.translate import TMPFS_LABEL
from parallax_docker.config import load_settings
from tests.integration.conftest import SESSION, agent_body
from tests.integration.swarm.conftest import (
    Handle,
    SwarmService,
    container_on,
    node_exec,
)
from tests.support.images import AGENT_IMAGE
from tests.support.polling import poll
from tests.support.swarm import ENGINE_PORT, SwarmCluster

pytestmark = pytest.mark.slow

SECRET = "s3cret-value-that-must-not-leak"
# Serves /tmp/www on port 8080, then reports ready (the image's health check reads /tmp/ready).
SERVE = [
    "/bin/sh",
    "-c",
    "mkdir -p /tmp/www && hostname > /tmp/www/who && httpd -p 8080 -h /tmp/www "
    "&& touch /tmp/ready && trap 'exit 0' TERM && while true; do sleep 1; done",
]


def test_agents_spread_across_the_nodes(
    swarm: SwarmCluster, swarm_spawn: Callable[..., Handle]
) -> None:
    agents = [swarm_spawn() for _ in range(3)]
    assert {a["node"] for a in agents} == {n.name for n in swarm.nodes}
    network = json.loads(swarm.docker(1, "network", "inspect", agents[0]["network"]))[0]
    assert (network["Driver"], network["Scope"], network["Attachable"]) == (
        "overlay",
        "swarm",
        True,
    )
    assert network["Labels"]["parallax.managed"] == "true"
    for agent in agents:
        assert agent["status"] == "ready"
        # The node itself runs the agent's container, as the handle says.
        index, inspect = container_on(swarm, agent)
        assert swarm.nodes[index - 1].name == agent["node"]
        assert inspect["Config"]["Labels"]["parallax.agent.id"] == agent["id"]


def test_agents_reach_each_other_by_name_across_nodes(
    swarm: SwarmCluster, swarm_spawn: Callable[..., Handle]
) -> None:
    servers = [swarm_spawn(command=SERVE) for _ in range(3)]
    by_node = {s["node"]: s for s in servers}
    assert len(by_node) == 3
    client = servers[0]
    index, inspect = container_on(swarm, client)
    for server in servers[1:]:
        assert server["node"] != client["node"]

        # Its name, as a client agent on another node uses it (busybox wget -T crashes;
        # timeout(1) bounds each try). Docker 20.10 spreads a new name to the other nodes
        # with its gossip's periodic bulk sync here (up to about 30 s; docs/swarm.md).
        def fetch(name: str = server["name"]) -> tuple[int, str]:
            return node_exec(
                swarm,
                index,
                inspect["Id"],
                "timeout",
                "3",
                "wget",
                "-q",
                "-O",
                "-",
                f"http://{name}:8080/who",
            )

        _, body = poll(fetch, lambda r: r[0] == 0, timeout_s=90, interval_s=0.5)
        server_index, server_inspect = container_on(swarm, server)
        assert body.strip() == server_inspect["Config"]["Hostname"]
        assert server_index != index


def test_agent_holds_its_limits_and_hardening_on_its_node(
    swarm: SwarmCluster, swarm_spawn: Callable[..., Handle]
) -> None:
    agent = swarm_spawn(resources={"memory": "96m", "cpu": 0.3})
    index, inspect = container_on(swarm, agent)
    host = inspect["HostConfig"]
    assert host["Memory"] == 96 * 1024 * 1024
    assert host["MemorySwap"] == 96 * 1024 * 1024
    assert host["NanoCpus"] == 300_000_000
    assert host["PidsLimit"] == agent["resources"]["pidsLimit"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert host["Init"] is True
    assert host["Privileged"] is False
    assert host["IpcMode"] == "private"
    assert host["LogConfig"]["Type"] == "json-file"
    assert host["LogConfig"]["Config"]["max-size"] == "10m"
    assert inspect["Config"]["User"] not in ("", "root", "0", "0:0")
    container = inspect["Id"]
    # What inspect cannot show, the container's own processes do.
    code, status = node_exec(swarm, index, container, "grep", "NoNewPrivs", "/proc/1/status")
    assert code == 0 and status.split() == ["NoNewPrivs:", "1"]
    code, _ = node_exec(swarm, index, container, "touch", "/cannot-write-root")
    assert code != 0
    code, ids = node_exec(swarm, index, container, "id", "-u")
    assert code == 0 and ids.strip() != "0"
    # Its run folder is a tmpfs of its own user, where it may write and run what it wrote.
    code, mounts = node_exec(
        swarm, index, container, "grep", " /run/parallax tmpfs ", "/proc/mounts"
    )
    assert code == 0 and f"uid={ids.strip()}" in mounts and "noexec" not in mounts, mounts
    script = (
        "printf '#!/bin/sh\necho ran\n' >/run/parallax/t; chmod +x /run/parallax/t; /run/parallax/t"
    )
    assert node_exec(swarm, index, container, "sh", "-c", script) == (0, "ran\n")
    # The PIDs limit holds: a fork bomb in miniature stops at it. Its sleeps outlast the loop
    # however slow the node is (with 5 s, the first ones ended before a loaded node reached the
    # limit); the exec ends with the loop, and the sleeps with the agent.
    bomb = f"for i in $(seq 1 {host['PidsLimit'] + 20}); do sleep 300 & done 2>&1 | grep -m1 fork"
    code, out = node_exec(swarm, index, container, "sh", "-c", bomb)
    assert "can't fork" in out, out


def test_secret_env_is_a_swarm_secret_never_in_the_service(
    swarm: SwarmCluster, swarm_spawn: Callable[..., Handle]
) -> None:
    agent = swarm_spawn(env={"API_KEY": SECRET})
    assert agent["envKeys"] == ["API_KEY"]
    service = json.loads(swarm.docker(1, "service", "inspect", f"parallax-{agent['id']}"))
    assert SECRET not in json.dumps(service)
    mounted = service[0]["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"]
    assert {m["File"]["Name"] for m in mounted} >= {"/run/parallax/env"}
    index, inspect = container_on(swarm, agent)
    assert SECRET not in json.dumps(inspect)
    code, env = node_exec(swarm, index, inspect["Id"], "cat", "/run/parallax/env")
    assert code == 0 and f"API_KEY={SECRET}" in env.split("\0")
    # The agent's command sees it as an environment variable.
    load = ". /run/parallax/env.sh && echo $API_KEY"
    code, seen = node_exec(swarm, index, inspect["Id"], "sh", "-c", load)
    assert seen.strip() == SECRET


def test_secrets_go_with_their_agent(swarm: SwarmCluster, swarm_service: SwarmService) -> None:
    response = swarm_service.api.post("/agents", json=agent_body(env={"API_KEY": SECRET}))
    assert response.status_code == 201, response.text
    agent_id = response.json()["id"]
    names = swarm.docker(1, "secret", "ls", "--format", "{{.Name}}").split()
    assert any(agent_id in name for name in names)
    assert swarm_service.api.delete(f"/agents/{agent_id}").status_code == 204
    names = swarm.docker(1, "secret", "ls", "--format", "{{.Name}}").split()
    assert not any(agent_id in name for name in names)
    assert swarm.docker(1, "service", "ls", "-q", "--filter", f"name=parallax-{agent_id}") == ""


def test_an_agents_tmpfs_volumes_go_with_it_from_its_node(
    swarm: SwarmCluster, swarm_service: SwarmService
) -> None:
    response = swarm_service.api.post("/agents", json=agent_body())
    assert response.status_code == 201, response.text
    agent = response.json()
    index, inspect = container_on(swarm, agent)
    tmpfs = {m["Destination"]: m["Name"] for m in inspect["Mounts"] if m["Type"] == "volume"}
    assert {"/tmp", "/run/parallax", "/workspace"} <= set(tmpfs), inspect["Mounts"]
    for name in tmpfs.values():
        volume = json.loads(swarm.docker(index, "volume", "inspect", name))[0]
        assert volume["Options"]["type"] == "tmpfs", volume
        assert volume["Labels"][TMPFS_LABEL] in tmpfs
        assert volume["Labels"]["parallax.agent.id"] == agent["id"]
    assert swarm_service.api.delete(f"/agents/{agent['id']}").status_code == 204
    # The node reaps the removed service's container a moment later, and its volumes with it;
    # the unused twins a node makes before a task's container are swept: none is left anywhere.
    mine = ("volume", "ls", "-q", "--filter", f"label=parallax.agent.id={agent['id']}")
    poll(
        lambda: [swarm.docker(node.index, *mine) for node in swarm.nodes],
        lambda left: left == [""] * len(swarm.nodes),
        timeout_s=60,
        interval_s=0.5,
    )


def test_logs_are_read_and_followed_on_any_node(
    swarm: SwarmCluster, swarm_api: httpx.Client, swarm_spawn: Callable[..., Handle]
) -> None:
    talker = [
        "/bin/sh",
        "-c",
        "touch /tmp/ready; i=0; while true; do i=$((i+1)); echo line-$i; sleep 0.2; done",
    ]
    agents = [swarm_spawn(command=talker) for _ in range(3)]
    assert len({a["node"] for a in agents}) == 3
    for agent in agents:

        def read(agent_id: str = agent["id"]) -> list[str]:
            lines: list[str] = swarm_api.get(f"/agents/{agent_id}/logs").json()["logs"]
            return lines

        logs = poll(read, lambda lines: "line-1" in lines, timeout_s=15)
        assert logs[0] == "line-1"
        seen: list[str] = []
        follow = {"follow": "true", "tail": "0"}
        with swarm_api.stream("GET", f"/agents/{agent['id']}/logs", params=follow) as stream:
            for line in stream.iter_lines():
                seen.append(line)
                if len(seen) == 3:
                    break
        numbers = [int(line.removeprefix("line-")) for line in seen]
        assert numbers == sorted(numbers) and numbers[0] > 1


def test_metrics_come_from_the_agents_node(
    swarm_api: httpx.Client, swarm_spawn: Callable[..., Handle]
) -> None:
    agents = [swarm_spawn() for _ in range(3)]
    for agent in agents:
        metrics = swarm_api.get(f"/agents/{agent['id']}/metrics")
        assert metrics.status_code == 200, metrics.text
        body = metrics.json()
        assert body["memoryLimit"] == agent["resources"]["memoryBytes"]
        assert 0 < body["memory"] < body["memoryLimit"]
        assert body["pids"] >= 2


def test_echo_turns_run_on_every_node(
    swarm_api: httpx.Client, swarm_spawn: Callable[..., Handle], swarm_echo: str
) -> None:
    agents = [
        swarm_spawn(image=swarm_echo, resources={"memory": "128m", "cpu": 0.5}) for _ in range(3)
    ]
    assert len({a["node"] for a in agents}) == 3
    for agent in agents:
        message = f"hello from {agent['node']}: 'quoted' $(not run)"
        response = swarm_api.post(
            f"/agents/{agent['id']}/send",
            json={"message": message, "expectResponse": True, "timeout": 60_000},
        )
        assert response.status_code == 200, response.text
        assert response.json()["response"]["content"] == message
        history = swarm_api.get(f"/agents/{agent['id']}/messages").json()["messages"]
        assert [m["direction"] for m in history] == ["inbound", "outbound"]


def test_terminal_opens_in_an_agent_on_another_node(
    swarm: SwarmCluster, swarm_service: SwarmService, swarm_spawn: Callable[..., Handle]
) -> None:
    manager = swarm.nodes[swarm_service.manager - 1].name
    agents = [swarm_spawn() for _ in range(3)]
    remote = next(a for a in agents if a["node"] != manager)
    url = swarm_service.ws_url + f"/ws/agents/{remote['id']}/terminal"
    with connect(url, open_timeout=10) as ws:
        ws.send(b"echo on-$(hostname)-$((6*7))\r")
        deadline = time.monotonic() + 15
        screen = ""
        while "-42\r\n" not in screen:
            left = deadline - time.monotonic()
            assert left > 0, screen
            data = ws.recv(timeout=left)
            screen += data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    _, inspect = container_on(swarm, remote)
    assert f"on-{inspect['Config']['Hostname']}-42" in screen


def test_files_go_in_and_out_of_an_agent_on_another_node(
    swarm: SwarmCluster, swarm_api: httpx.Client, swarm_spawn: Callable[..., Handle]
) -> None:
    agents = [swarm_spawn() for _ in range(3)]
    remote = next(a for a in agents if a["node"] != swarm.nodes[0].name)
    files = f"/agents/{remote['id']}/files"
    # Large enough to take many TLS records each way; the upload's end is TLS's close_notify.
    data = bytes(range(256)) * 8192
    put = swarm_api.put(files, params={"path": "notes/blob.bin"}, content=data)
    assert put.status_code == 200, put.text
    assert put.json()["bytes"] == len(data)
    index, inspect = container_on(swarm, remote)
    # Written on that node, by the agent's own user (the bytes are compared by the read below).
    blob = "/workspace/notes/blob.bin"
    code, seen = node_exec(swarm, index, inspect["Id"], "stat", "-c", "%s %u", blob)
    _, uid = node_exec(swarm, index, inspect["Id"], "id", "-u")
    assert code == 0 and seen.split() == [str(len(data)), uid.strip()] != ["0"], seen
    got = swarm_api.get(files, params={"path": "/workspace/notes/blob.bin"})
    assert got.status_code == 200 and got.content == data
    listing = swarm_api.get(f"{files}/list", params={"path": "notes"}).json()
    assert [(e["name"], e["size"]) for e in listing["entries"]] == [("blob.bin", len(data))]
    # Confined where the agent runs, as on one host.
    refused = swarm_api.get(files, params={"path": "/etc/passwd"})
    assert refused.status_code == 403 and refused.json()["code"] == "PATH_FORBIDDEN"
    gone = swarm_api.delete(files, params={"path": "notes", "recursive": "true"})
    assert gone.status_code == 204, gone.text
    code, _ = node_exec(swarm, index, inspect["Id"], "test", "-e", "/workspace/notes")
    assert code != 0
    # Its overlay address is not routed to the service's host: no previews on a Swarm.
    preview = swarm_api.get(f"/agents/{remote['id']}/ports/8080/")
    assert preview.status_code == 409 and preview.json()["code"] == "PREVIEW_UNAVAILABLE"


def test_health_lists_the_nodes_with_their_agents(
    swarm: SwarmCluster, swarm_api: httpx.Client, swarm_spawn: Callable[..., Handle]
) -> None:
    agents = [swarm_spawn() for _ in range(3)]
    health = swarm_api.get("/health").json()
    assert health["healthy"] is True and health["runtime"]["type"] == "swarm"
    nodes = {n["name"]: n for n in health["nodes"]}
    assert set(nodes) == {n.name for n in swarm.nodes}
    assert all(n["state"] == "ready" and n["availability"] == "active" for n in nodes.values())
    for agent in agents:
        assert nodes[agent["node"]]["agents"] >= 1


def test_a_restart_is_a_new_task_that_passes_every_check_again(
    swarm: SwarmCluster, swarm_api: httpx.Client, swarm_spawn: Callable[..., Handle]
) -> None:
    agent = swarm_spawn()
    _, before = container_on(swarm, agent)
    response = swarm_api.post(f"/agents/{agent['id']}/restart")
    assert response.status_code == 200, response.text
    again = response.json()
    assert again["status"] == "ready" and again["containerId"] == agent["containerId"]
    index, after = container_on(swarm, again)
    assert after["Id"] != before["Id"]
    assert after["HostConfig"]["MemorySwap"] == after["HostConfig"]["Memory"]
    code, status = node_exec(swarm, index, after["Id"], "grep", "NoNewPrivs", "/proc/1/status")
    assert code == 0 and status.split() == ["NoNewPrivs:", "1"]


def test_a_runtime_is_a_placement_on_the_nodes_that_declare_it(
    swarm: SwarmCluster, swarm_api: httpx.Client, swarm_spawn: Callable[..., Handle]
) -> None:
    agent = swarm_spawn(runtime="runc")
    _, inspect = container_on(swarm, agent)
    assert inspect["HostConfig"]["Runtime"] == "runc"
    service = json.loads(swarm.docker(1, "service", "inspect", f"parallax-{agent['id']}"))[0]
    constraints = service["Spec"]["TaskTemplate"]["Placement"]["Constraints"]
    assert "engine.labels.parallax.runtime==runc" in constraints
    # No node declares gVisor here: refused before anything is made.
    response = swarm_api.post("/agents", json=agent_body(runtime="runsc"))
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "RUNTIME_UNAVAILABLE"


def test_node_engines_answer_only_clients_with_the_clusters_certificate(
    swarm: SwarmCluster,
) -> None:
    node = swarm.nodes[1]
    trusted = ssl.create_default_context(cafile=str(swarm.tls / "ca.pem"))
    # Without a client certificate the engine ends the handshake: no API at all.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"https://{node.address}:{ENGINE_PORT}/version", verify=trusted, timeout=5)
    trusted.load_cert_chain(str(swarm.tls / "cert.pem"), str(swarm.tls / "key.pem"))
    answer = httpx.get(f"https://{node.address}:{ENGINE_PORT}/version", verify=trusted, timeout=5)
    assert answer.status_code == 200 and answer.json()["ApiVersion"]


async def test_an_image_built_on_the_manager_is_pushed_to_the_clusters_registry(
    swarm: SwarmCluster,
) -> None:
    settings = load_settings({**swarm.service_env(), "PARALLAX_INSTANCE": "img-test"})
    deployment = create_deployment(settings)
    tag = f"ptest-built/{SESSION}:v1"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w:gz") as tar:
        dockerfile = f"FROM {AGENT_IMAGE}\nLABEL parallax.test.built={SESSION}\n".encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    try:
        assert deployment.images is not None
        events = [
            event
            async for event in deployment.images.stream_build(
                context.getvalue(),
                dockerfile="Dockerfile",
                tag=tag,
                build_args={},
                labels={},
                no_cache=True,
            )
        ]
    finally:
        await deployment.close()
    pushed = [e.line for e in events if isinstance(e, BuildOutput) and "registry" in e.line]
    assert pushed and f"{swarm.registry}/ptest-built/{SESSION}@sha256:" in pushed[0]
    assert isinstance(events[-1], BuildDone)
    tags = httpx.get(f"http://{swarm.registry}/v2/ptest-built/{SESSION}/tags/list", timeout=10)
    assert tags.json()["tags"] == ["v1"]
