"""What a spawn request may ask for: resources, volumes, env and networks, on the real engine.

Every refusal is checked for its status and code, and for leaving no container, network or
volume behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import PREFIX, agent_body, managed_containers
from tests.support.engine import Engine

Spawn = Callable[..., dict[str, Any]]


# -- resources ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("memory", "expected"),
    [
        ("1.5g", int(1.5 * 1024**3)),
        ("256Mi", 256 * 1024**2),
        ("128M", 128 * 1024**2),
        ("100MB", 100 * 1024**2),
        ("65536k", 65536 * 1024),
    ],
)
def test_memory_units_are_applied_exactly(
    spawn: Spawn, engine: Engine, memory: str, expected: int
) -> None:
    handle = spawn(resources={"memory": memory, "cpu": 0.1})
    host = engine.inspect(handle["containerName"])["HostConfig"]  # type: ignore[index]
    assert host["Memory"] == expected


@pytest.mark.parametrize(
    ("cpu", "nano"),
    [(1, 1_000_000_000), ("0.5", 500_000_000), ("250m", 250_000_000), (2.0, 2_000_000_000)],
)
def test_cpu_forms_are_applied_as_nano_cpus(
    spawn: Spawn, engine: Engine, cpu: Any, nano: int
) -> None:
    handle = spawn(resources={"memory": "64m", "cpu": cpu})
    host = engine.inspect(handle["containerName"])["HostConfig"]  # type: ignore[index]
    assert host["NanoCpus"] == nano


@pytest.mark.parametrize("memory", ["lots", "12x", "-5m", "", "1m", "0"])
def test_bad_memory_is_refused(refused: Callable[..., Any], memory: str) -> None:
    refused(422, "VALIDATION_ERROR", resources={"memory": memory})


@pytest.mark.parametrize("cpu", ["fast", "0", 0.001, "-1", "NaN"])
def test_bad_cpu_is_refused(refused: Callable[..., Any], cpu: Any) -> None:
    refused(422, "VALIDATION_ERROR", resources={"memory": "64m", "cpu": cpu})


def test_memory_above_the_host_is_resource_limit(refused: Callable[..., Any]) -> None:
    body = refused(422, "LIMIT_ABOVE_HOST", resources={"memory": "4096g"})
    assert "exceeds" in body["error"]


def test_cpu_above_the_host_is_resource_limit(refused: Callable[..., Any]) -> None:
    refused(422, "LIMIT_ABOVE_HOST", resources={"memory": "64m", "cpu": 512})


# -- volumes -----------------------------------------------------------------------------------


def test_bind_mount_read_only(spawn: Spawn, engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("payload-7")
    tmp_path.chmod(0o755)
    (tmp_path / "data.txt").chmod(0o644)
    handle = spawn(volumes=[f"{tmp_path}:/data:ro"])
    mounts = engine.inspect(handle["containerName"])["Mounts"]  # type: ignore[index]
    bind = next(m for m in mounts if m["Destination"] == "/data")
    assert bind["Type"] == "bind" and bind["RW"] is False
    assert bind["Source"] == os.path.realpath(tmp_path)
    code, out = engine.exec(handle["containerName"], "cat", "/data/data.txt")
    assert (code, out) == (0, "payload-7")
    code, _ = engine.exec(handle["containerName"], "touch", "/data/new")
    assert code != 0


def test_named_volume_is_created_with_the_managed_label(spawn: Spawn, engine: Engine) -> None:
    name = f"{PREFIX}-vol"
    handle = spawn(volumes=[f"{name}:/cache"])
    volume = next(v for v in engine.volumes(name) if v["Name"] == name)
    assert volume["Labels"]["parallax.managed"] == "true"
    code, _ = engine.exec(handle["containerName"], "ls", "/cache")
    assert code == 0


def test_unmanaged_named_volume_is_refused(refused: Callable[..., Any], engine: Engine) -> None:
    name = f"{PREFIX}-foreign"
    engine.create_volume(name)
    refused(403, "VOLUME_FORBIDDEN", volumes=[f"{name}:/data"])


def test_missing_host_path_is_an_error_not_a_new_folder(
    refused: Callable[..., Any], tmp_path: Path
) -> None:
    missing = tmp_path / "nope"
    refused(422, "VALIDATION_ERROR", volumes=[f"{missing}:/data:ro"])
    assert not missing.exists()


@pytest.mark.parametrize(
    "source",
    [
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/",
        "/etc",
        "/proc",
        "/sys",
        "/dev",
        "/boot",
        "/var/lib/docker",
        "/etc/passwd",
        "/var",
        "/proc/self",
        "/tmp/../etc",
    ],
)
def test_forbidden_host_paths_are_refused(refused: Callable[..., Any], source: str) -> None:
    refused(403, "VOLUME_FORBIDDEN", volumes=[f"{source}:/data"])


def test_symlink_to_the_docker_socket_is_refused(
    refused: Callable[..., Any], tmp_path: Path
) -> None:
    link = tmp_path / "innocent"
    link.symlink_to("/var/run/docker.sock")
    refused(403, "VOLUME_FORBIDDEN", volumes=[f"{link}:/data"])


def test_symlink_into_etc_is_refused(refused: Callable[..., Any], tmp_path: Path) -> None:
    link = tmp_path / "config"
    link.symlink_to("/etc")
    refused(403, "VOLUME_FORBIDDEN", volumes=[f"{link}:/data"])


@pytest.mark.parametrize(
    "entry",
    [
        "relative/path:/data",
        "./x:/data",
        "/tmp:data",
        "/tmp:/data:rw:z",
        "/tmp:/data:shared",
        "/tmp",
    ],
)
def test_malformed_volume_entries_are_refused(refused: Callable[..., Any], entry: str) -> None:
    refused(422, "VALIDATION_ERROR", volumes=[entry])


@pytest.mark.parametrize("target", ["/proc", "/sys/fs", "/dev", "/run/parallax", "/"])
def test_mount_over_protected_container_paths_is_refused(
    refused: Callable[..., Any], tmp_path: Path, target: str
) -> None:
    refused(403, "VOLUME_FORBIDDEN", volumes=[f"{tmp_path}:{target}"])


def test_allow_list_narrows_host_mounts(
    start_service: Callable[..., Any], tmp_path: Path, engine: Engine
) -> None:
    allowed = tmp_path / "allowed"
    other = tmp_path / "other"
    allowed.mkdir()
    other.mkdir()
    proc = start_service({"PARALLAX_ALLOWED_HOST_PATHS": str(allowed)})
    before = managed_containers(engine)
    response = httpx.post(
        proc.url + "/agents", json=agent_body(volumes=[f"{other}:/data"]), timeout=60
    )
    assert response.status_code == 403
    assert response.json()["code"] == "VOLUME_FORBIDDEN"
    assert managed_containers(engine) == before
    response = httpx.post(
        proc.url + "/agents", json=agent_body(volumes=[f"{allowed}:/data"]), timeout=60
    )
    assert response.status_code == 201, response.text
    engine.remove_container(response.json()["containerName"])


# -- env and labels ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["1BAD", "WITH-DASH", "SPACE KEY", "", "A=B"])
def test_invalid_env_keys_are_refused(refused: Callable[..., Any], key: str) -> None:
    body = refused(422, "VALIDATION_ERROR", env={key: "secret-value-991"})
    assert "secret-value-991" not in str(body)


def test_env_reaches_the_agent(spawn: Spawn, engine: Engine) -> None:
    # The agent's own process environment (env values come through a file, not Env).
    handle = spawn(
        env={"GREETING": "hello there"},
        credentials={"githubToken": "ghp_test"},
        command=[
            "/bin/sh",
            "-c",
            "trap 'exit 0' TERM; env > /tmp/agent-env; touch /tmp/ready; "
            "while true; do sleep 1; done",
        ],
    )
    code, out = engine.exec(handle["containerName"], "cat", "/tmp/agent-env")
    assert code == 0
    assert "GREETING=hello there" in out
    assert "GITHUB_TOKEN=ghp_test" in out


def test_runtime_labels_cannot_be_overwritten(refused: Callable[..., Any]) -> None:
    refused(422, "VALIDATION_ERROR", labels={"parallax.managed": "false"})
    refused(422, "VALIDATION_ERROR", labels={"parallax.agent.id": "other"})


def test_unknown_fields_are_refused(refused: Callable[..., Any]) -> None:
    refused(422, "VALIDATION_ERROR", privileged=True)


# -- networks ----------------------------------------------------------------------------------


def test_named_network_is_created_managed(spawn: Spawn, engine: Engine) -> None:
    name = f"{PREFIX}-custom"
    handle = spawn(network=name)
    network = engine.network(name)
    assert network is not None
    assert network["Labels"]["parallax.managed"] == "true"
    assert handle["network"] == name
    info = engine.inspect(handle["containerName"])
    assert list(info["NetworkSettings"]["Networks"]) == [name]  # type: ignore[index]


def test_network_none_has_only_loopback(spawn: Spawn, engine: Engine) -> None:
    handle = spawn(network="none")
    assert engine.inspect(handle["containerName"])["HostConfig"]["NetworkMode"] == "none"  # type: ignore[index]
    code, out = engine.exec(handle["containerName"], "ip", "-o", "link")
    assert code == 0
    assert [line.split(":")[1].strip() for line in out.strip().splitlines()] == ["lo"]


@pytest.mark.parametrize("network", ["host", "bridge", "container:parallax-x", "default"])
def test_isolation_breaking_networks_are_refused(refused: Callable[..., Any], network: str) -> None:
    refused(403, "NETWORK_FORBIDDEN", network=network)


def test_unmanaged_existing_network_is_refused(refused: Callable[..., Any], engine: Engine) -> None:
    name = f"{PREFIX}-foreign-net"
    engine.http.post("/networks/create", json={"Name": name}).raise_for_status()
    refused(403, "NETWORK_FORBIDDEN", network=name)


def test_invalid_network_name_is_refused(refused: Callable[..., Any]) -> None:
    refused(422, "VALIDATION_ERROR", network="bad name!")
