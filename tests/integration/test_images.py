"""The real agent images on the real engine, run with the hardening the service applies.

The build goes through the CLI (``parallax-docker images build all --plain``); a second run is
fast because of the engine's layer cache. Each image is then run read-only, with every
capability dropped, no-new-privileges, an init process and the service's tmpfs layout, and
checked from outside through the Engine API.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from parallax_docker.config import load_settings
from parallax_docker.images import catalog
from parallax_docker.images.ca import HOST_CA_BUNDLE
from tests.integration.conftest import SESSION
from tests.support.engine import Engine

pytestmark = [pytest.mark.slow, pytest.mark.integration]

BUILD_TIMEOUT_S = 3600
HEALTHY_WITHIN_S = 40
DOCKER = shutil.which("docker", path="/usr/bin:/usr/local/bin") or "docker"
CLI_TYPES = ("claude", "codex", "gemini", "aider")
RUN_LABELS = {"parallax.test": "1", "test-session": SESSION}
# The service's tmpfs layout: everything writable lives on tmpfs, owned by the agent user.
_PRIVATE = "rw,nosuid,nodev,size=64m,uid=1000,gid=1000,mode=0700"
TMPFS = {
    "/tmp": "rw,nosuid,nodev,size=64m,mode=1777",
    "/home/agent": _PRIVATE,
    "/workspace": _PRIVATE,
    "/run/parallax": _PRIVATE,
}


def cli(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parallax_docker.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def built(engine: Engine) -> dict[str, Any]:
    """Build every image (incrementally) once for this module; the outcome and its time."""
    started = time.monotonic()
    done = cli("images", "build", "all", "--plain", timeout=BUILD_TIMEOUT_S)
    seconds = time.monotonic() - started
    print(f"\nimages build all: {seconds:.1f}s, exit {done.returncode}")
    print("\n".join(line for line in done.stdout.splitlines() if line.startswith("summary:")))
    return {"returncode": done.returncode, "output": done.stdout + done.stderr, "seconds": seconds}


@pytest.fixture(scope="module")
def images(built: dict[str, Any]) -> dict[str, str]:
    if built["returncode"] != 0:
        pytest.fail("images build failed:\n" + built["output"][-6000:])
    settings = load_settings({})
    return {t: catalog.image_name(settings, t) for t in catalog.TYPES}


@pytest.fixture
def run_agent(engine: Engine) -> Iterator[Callable[..., str]]:
    """Create and start a container the way the service does; removed after the test."""
    made: list[str] = []

    def run(
        image: str,
        cmd: list[str] | None = None,
        env: list[str] | None = None,
        mounts: list[dict[str, Any]] | None = None,
    ) -> str:
        body: dict[str, Any] = {
            "Image": image,
            "Labels": RUN_LABELS,
            "Env": env or [],
            "HostConfig": {
                "ReadonlyRootfs": True,
                "CapDrop": ["ALL"],
                "SecurityOpt": ["no-new-privileges"],
                "Init": True,
                "PidsLimit": 256,
                "Memory": 1024 * 1024 * 1024,
                "NetworkMode": "none",
                "Tmpfs": TMPFS,
                "Mounts": mounts or [],
            },
        }
        if cmd is not None:
            body["Cmd"] = cmd
        name = f"ptest-img-{SESSION}-{uuid.uuid4().hex[:8]}"
        created = engine.http.post("/containers/create", params={"name": name}, json=body)
        assert created.status_code == 201, created.text
        made.append(name)
        started = engine.http.post(f"/containers/{name}/start")
        assert started.status_code == 204, started.text
        return name

    yield run
    for name in made:
        engine.remove_container(name)


def wait_health(engine: Engine, name: str, within_s: float = HEALTHY_WITHIN_S) -> str:
    deadline = time.monotonic() + within_s
    status = "none"
    while time.monotonic() < deadline:
        info = engine.inspect(name) or {}
        status = ((info.get("State") or {}).get("Health") or {}).get("Status", "none")
        if status in ("healthy", "unhealthy"):
            return str(status)
        time.sleep(0.5)
    return str(status)


def logs(engine: Engine, name: str) -> str:
    raw = engine.http.get(f"/containers/{name}/logs", params={"stdout": 1, "stderr": 1}).content
    # Non-TTY logs are multiplexed: an 8-byte header before each frame.
    out, pos = bytearray(), 0
    while pos + 8 <= len(raw):
        size = int.from_bytes(raw[pos + 4 : pos + 8], "big")
        out += raw[pos + 8 : pos + 8 + size]
        pos += 8 + size
    return out.decode("utf-8", "replace")


def image_labels(engine: Engine, image: str) -> dict[str, str]:
    response = engine.http.get(f"/images/{image}/json")
    response.raise_for_status()
    return dict(response.json()["Config"]["Labels"] or {})


# -- the build -----------------------------------------------------------------------------------


@pytest.mark.timeout(BUILD_TIMEOUT_S)
def test_build_all_images_succeeds(built: dict[str, Any]) -> None:
    assert built["returncode"] == 0, built["output"][-6000:]


def test_images_ls_shows_every_image_built_with_its_cli_version(images: dict[str, str]) -> None:
    done = cli("images", "ls", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["type"]: row for row in json.loads(done.stdout)["images"]}
    assert set(rows) == set(catalog.TYPES)
    for image_type, row in rows.items():
        assert row["status"] == "built", row
        assert row["size"] > 0
        recipe = catalog.recipe_for(image_type)
        if recipe.default_version is not None:
            assert row["cli_version"] == recipe.default_version


def test_a_second_build_is_served_from_the_layer_cache(images: dict[str, str]) -> None:
    started = time.monotonic()
    done = cli("images", "build", "all", "--plain", "--verbose", timeout=600)
    assert done.returncode == 0, done.stdout[-4000:]
    assert time.monotonic() - started < 120
    # The classic builder says "Running in <container>" for every step it has to run.
    assert "Running in" not in done.stdout
    assert "Using cache" in done.stdout


def test_missing_only_builds_nothing_when_every_image_is_present(images: dict[str, str]) -> None:
    done = cli("images", "build", "all", "--missing", "--plain")
    assert done.returncode == 0, done.stdout
    assert "step " not in done.stdout
    assert done.stdout.count("already built") == len(catalog.TYPES)


# -- each image under the service's hardening --------------------------------------------------


@pytest.mark.parametrize("image_type", catalog.TYPES)
def test_image_carries_the_contract_labels_user_and_entrypoint(
    image_type: str, images: dict[str, str], engine: Engine
) -> None:
    info = engine.http.get(f"/images/{images[image_type]}/json").json()
    config = info["Config"]
    labels = config["Labels"]
    recipe = catalog.recipe_for(image_type)
    assert labels["parallax.image.type"] == image_type
    assert labels["parallax.cli.name"] == recipe.cli_name
    assert labels["parallax.cli.version"]
    assert labels["parallax.image.user"] == "agent"
    assert config["User"] == "1000:1000"
    assert config["WorkingDir"] == "/workspace"
    assert config["Entrypoint"] == ["/usr/local/bin/parallax-entrypoint"]
    assert config["Healthcheck"]["Test"] == ["CMD", "/usr/local/bin/parallax-healthcheck"]
    assert labels["parallax.heartbeat"] == "1"


@pytest.mark.parametrize("image_type", (*CLI_TYPES, "echo"))
def test_cli_runs_as_agent_on_read_only_root_and_turns_healthy(
    image_type: str, images: dict[str, str], engine: Engine, run_agent: Callable[..., str]
) -> None:
    name = run_agent(images[image_type])
    assert wait_health(engine, name) == "healthy", logs(engine, name)

    binary = "parallax-echo" if image_type == "echo" else image_type
    code, output = engine.exec(name, "parallax-exec", binary, "--version")
    assert code == 0, output
    assert image_labels(engine, images[image_type])["parallax.cli.version"] in output

    assert engine.exec(name, "id", "-un") == (0, "agent\n")
    assert engine.exec(name, "id", "-u") == (0, "1000\n")
    code, output = engine.exec(name, "touch", "/usr/local/probe")
    assert code != 0 and "Read-only file system" in output
    assert engine.exec(name, "touch", "/home/agent/probe", "/workspace/probe")[0] == 0
    host = (engine.inspect(name) or {})["HostConfig"]
    assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]


@pytest.mark.parametrize("image_type", CLI_TYPES)
def test_missing_credential_is_reported_in_the_logs(
    image_type: str, images: dict[str, str], engine: Engine, run_agent: Callable[..., str]
) -> None:
    name = run_agent(images[image_type])
    assert wait_health(engine, name) == "healthy"
    assert "parallax: login required: " in logs(engine, name)
    code, output = engine.exec(name, "cat", "/run/parallax/auth")
    assert code == 0 and output.startswith("login-required ")


def test_secrets_from_the_env_file_reach_the_agent_but_not_the_container_config(
    images: dict[str, str], engine: Engine, run_agent: Callable[..., str]
) -> None:
    secret = f"sk-ant-test-{uuid.uuid4().hex}"
    name = run_agent(images["claude"], env=["PARALLAX_WAIT_ENV_S=30"])
    records = f"ANTHROPIC_API_KEY={secret}\\0ODD=a=b $(x) `y`\\nline2\\0"
    code, output = engine.exec(
        name,
        "bash",
        "-c",
        f"printf '{records}' >/run/parallax/env && touch /run/parallax/env.ready",
    )
    assert code == 0, output
    assert wait_health(engine, name) == "healthy"
    code, environ = engine.exec(
        name, "bash", "-c", 'tr "\\0" "\\n" </proc/"$(cat /run/parallax/agent.pid)"/environ'
    )
    assert f"ANTHROPIC_API_KEY={secret}\n" in environ
    assert "ODD=a=b $(x) `y`\nline2\n" in environ
    assert "login required" not in logs(engine, name)
    assert secret not in json.dumps(engine.inspect(name))
    code, output = engine.exec(name, "parallax-exec", "bash", "-c", 'echo "$ANTHROPIC_API_KEY"')
    assert (code, output) == (0, f"{secret}\n")


def test_sigterm_stops_the_agent_quickly_with_its_exit_code(
    images: dict[str, str], engine: Engine, run_agent: Callable[..., str]
) -> None:
    name = run_agent(images["base"])
    assert wait_health(engine, name) == "healthy"
    started = time.monotonic()
    stopped = engine.http.post(f"/containers/{name}/stop", params={"t": 10}, timeout=30)
    assert stopped.status_code == 204
    assert time.monotonic() - started < 5
    state = (engine.inspect(name) or {})["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 0)


def test_the_container_exits_with_the_agent_command_exit_code(
    images: dict[str, str], engine: Engine, run_agent: Callable[..., str]
) -> None:
    name = run_agent(images["base"], cmd=["bash", "-c", "exit 7"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        state = (engine.inspect(name) or {})["State"]
        if state["Status"] == "exited":
            break
        time.sleep(0.2)
    assert (state["Status"], state["ExitCode"]) == ("exited", 7)


def test_health_reflects_whether_the_agent_process_is_alive(
    images: dict[str, str], engine: Engine, run_agent: Callable[..., str]
) -> None:
    name = run_agent(images["base"])
    assert engine.exec(name, "parallax-healthcheck")[0] == 0
    # Point the pid file at a process that does not exist: the check must notice.
    assert engine.exec(name, "bash", "-c", "echo 999999 >/run/parallax/agent.pid")[0] == 0
    code, output = engine.exec(name, "parallax-healthcheck")
    assert code == 1 and "not running" in output


def test_the_entrypoint_beats_a_heartbeat_into_a_mounted_fifo(
    images: dict[str, str],
    engine: Engine,
    run_agent: Callable[..., str],
    tmp_path: Path,
) -> None:
    channel = tmp_path / "heartbeat"
    os.mkfifo(channel, 0o666)
    os.chmod(channel, 0o666)
    # Held read-write here as the service's reads would find it: lines stay until read.
    fd = os.open(channel, os.O_RDWR | os.O_NONBLOCK)
    try:
        name = run_agent(
            images["base"],
            env=["PARALLAX_HEARTBEAT_S=1"],
            mounts=[{"Type": "bind", "Source": str(channel), "Target": "/run/parallax/heartbeat"}],
        )
        assert _next_line(fd, lambda line: line == "ok") == "ok"
        pid = engine.exec(name, "cat", "/run/parallax/agent.pid")[1].strip()
        # kill is the shell's builtin in the image (no /bin/kill).
        assert engine.exec(name, "sh", "-c", 'kill -STOP "$1"', "sh", pid)[0] == 0
        assert _next_line(fd, lambda line: line != "ok") == f"process {pid} is stopped"
    finally:
        os.close(fd)


def _next_line(fd: int, wanted: Callable[[str], bool], within_s: float = 15) -> str:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            lines = os.read(fd, 65536).decode().splitlines()
        except BlockingIOError:
            lines = []
        for line in lines:
            if wanted(line):
                return line
        time.sleep(0.1)
    raise AssertionError(f"no such heartbeat line within {within_s}s")


def test_echo_answers_with_exactly_the_message(
    images: dict[str, str], run_agent: Callable[..., str]
) -> None:
    name = run_agent(images["echo"])
    message = b"quotes ' \" $(whoami) `id` \\n\n\ttabs\x00nul \xff" + bytes(range(256)) * 64
    done = subprocess.run(
        [DOCKER, "exec", "-i", name, "parallax-echo"],
        input=message,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == message


class _ResponseReader(io.RawIOBase):
    """A readable file over an httpx byte stream, for tarfile's streaming mode."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            self._buffer = next(self._chunks, b"")
            if not self._buffer:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def layer_paths(engine: Engine, image: str) -> Iterator[str]:
    """Every path in every layer of ``image`` (``docker save``), deleted ones included."""
    with engine.http.stream("GET", f"/images/{image}/get", timeout=300) as response:
        response.raise_for_status()
        reader = io.BufferedReader(_ResponseReader(response.iter_bytes(1 << 20)), 1 << 20)
        with tarfile.open(fileobj=reader, mode="r|") as saved:
            for member in saved:
                if not member.name.endswith("/layer.tar"):
                    continue
                layer = saved.extractfile(member)
                assert layer is not None
                with tarfile.open(fileobj=layer, mode="r|") as files:
                    yield from (entry.name for entry in files)


@pytest.mark.parametrize("image_type", ["base", "claude", "aider"])
def test_no_layer_of_an_image_holds_the_extra_ca(
    image_type: str, images: dict[str, str], engine: Engine
) -> None:
    leftovers = [
        path
        for path in layer_paths(engine, images[image_type])
        if "parallax-ca" in path or "parallax-build-ca" in path or "parallax-extra" in path
    ]
    assert leftovers == []


def _image_ids(engine: Engine, *, dangling: bool) -> set[str]:
    params = {"filters": json.dumps({"dangling": ["true"]})} if dangling else {"all": "1"}
    return {image["Id"] for image in engine.http.get("/images/json", params=params).json()}


@pytest.mark.timeout(900)
def test_keep_ca_leaves_the_extra_ca_in_the_trust_store(
    images: dict[str, str], engine: Engine, run_agent: Callable[..., str]
) -> None:
    if not HOST_CA_BUNDLE.is_file():
        pytest.skip("no host CA bundle to use as the extra CA")
    before = _image_ids(engine, dangling=False)
    prefix = f"ptest-{SESSION}/agent-"
    name = f"{prefix}base:latest"
    container = ""
    try:
        done = cli(
            *("images", "build", "base", "--keep-ca", "--host-ca", "--plain"),
            timeout=900,
            env={"PARALLAX_IMAGE_PREFIX": prefix},
        )
        assert done.returncode == 0, done.stdout[-4000:]
        container = run_agent(name)
        code, output = engine.exec(container, "ls", "/usr/local/share/ca-certificates")
        assert (code, output) == (0, "parallax-extra-1.crt\n")
        code, output = engine.exec(
            container, "grep", "-c", "BEGIN CERTIFICATE", "/etc/ssl/certs/ca-certificates.crt"
        )
        extra = HOST_CA_BUNDLE.read_bytes().count(b"BEGIN CERTIFICATE")
        assert code == 0 and int(output) > extra
        assert engine.exec(container, "test", "-e", "/etc/apt/apt.conf.d/99parallax-build-ca")[0]
    finally:
        if container:
            engine.remove_container(container)
        engine.http.delete(f"/images/{name}", params={"force": "1"})
        # The stage images this build added (its cache) go too; nothing built before is touched.
        for image_id in _image_ids(engine, dangling=True) - before:
            engine.http.delete(f"/images/{image_id}")
