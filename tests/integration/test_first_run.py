"""The README's two commands on a fresh Debian 12 machine: a clean container of the project's own
debootstrapped Debian image (no sudo, no Python, nothing installed), with the host's Docker
socket mounted so that an engine answers.

``bash scripts/run.sh`` is run as root and as a user who has sudo, up to the service answering
on its port; ``bash scripts/test.sh`` as root up to the point where pytest starts (it only
collects: the suite is not run inside the suite). The container shares the host's network (the
installs reach Debian's mirror and PyPI; the service's port is the test's to choose) and trusts
the host's CA bundle, as a machine behind the same TLS proxy would.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from parallax_docker.config import load_settings
from parallax_docker.images.bootstrap import DebianSource
from parallax_docker.images.ca import choose_ca
from parallax_docker.images.operations import image_engine
from tests.integration.conftest import PREFIX, SESSION
from tests.support.engine import SOCKET, Engine
from tests.support.server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(2400)]

ROOT = Path(__file__).resolve().parents[2]
USER_UID = 1000


def checkout_files() -> list[str]:
    """The working tree as a clone would have it, uncommitted changes included."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def tar_of(files: dict[str, bytes | Path], uid: int = 0) -> bytes:
    buffer = io.BytesIO()
    folders = sorted({str(parent) for name in files for parent in Path(name).parents} - {"."})
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.uid = info.gid = uid
            tar.addfile(info)
        for name, source in files.items():
            data = source.read_bytes() if isinstance(source, Path) else source
            info = tarfile.TarInfo(name)
            info.size = len(data)
            mode = source.stat().st_mode & 0o777 if isinstance(source, Path) else 0o644
            info.mode = mode
            info.uid = info.gid = uid
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Machine:
    """One clean container standing in for a fresh machine."""

    def __init__(self, engine: Engine, image: str, env: dict[str, str]) -> None:
        self.engine = engine
        body = {
            "Image": image,
            "Cmd": ["sleep", "infinity"],
            "Env": [f"{k}={v}" for k, v in env.items()],
            "Labels": {"test-session": SESSION},
            "HostConfig": {
                "Init": True,
                "NetworkMode": "host",
                "Binds": [f"{SOCKET}:/var/run/docker.sock"],
            },
        }
        name = f"{PREFIX}-firstrun-{uuid.uuid4().hex[:6]}"
        made = engine.http.post("/containers/create", params={"name": name}, json=body)
        assert made.status_code == 201, made.text
        self.id: str = made.json()["Id"]
        engine.http.post(f"/containers/{self.id}/start").raise_for_status()

    def put(self, folder: str, archive: bytes) -> None:
        self.engine.http.put(
            f"/containers/{self.id}/archive", params={"path": folder}, content=archive
        ).raise_for_status()

    def run(self, script: str, user: str = "root", timeout_s: float = 900) -> tuple[int, str]:
        """Run ``script`` with bash -lc to its end; its exit code and output."""
        log = f"/tmp/step-{uuid.uuid4().hex[:6]}.log"
        self.start(script, user, log)
        exit_code = self.wait_exec(timeout_s)
        return exit_code, self.read(log)

    def start(self, script: str, user: str, log: str) -> None:
        wrapped = f"( {script} ) >{log} 2>&1 </dev/null"
        created = self.engine.http.post(
            f"/containers/{self.id}/exec",
            json={"Cmd": ["bash", "-lc", wrapped], "User": user, "WorkingDir": "/"},
        )
        created.raise_for_status()
        self._exec = created.json()["Id"]
        self.engine.http.post(f"/exec/{self._exec}/start", json={"Detach": True}).raise_for_status()

    def wait_exec(self, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self.engine.http.get(f"/exec/{self._exec}/json").json()
            if not state["Running"]:
                return int(state["ExitCode"])
            time.sleep(1)
        raise AssertionError(f"the step did not end within {timeout_s} s")

    def exec_running(self) -> bool:
        return bool(self.engine.http.get(f"/exec/{self._exec}/json").json()["Running"])

    def read(self, path: str) -> str:
        code, output = self.engine.exec(self.id, "cat", path)
        return output if code == 0 else f"(no {path})"

    def remove(self) -> None:
        self.engine.remove_container(self.id)


@pytest.fixture(scope="module")
def debian_image() -> str:
    async def ensure() -> str:
        async with image_engine(load_settings({})) as engine:
            return await DebianSource(engine).ensure(lambda _: None, lambda _: None)

    return asyncio.run(ensure())


@pytest.fixture
def fresh_machine(engine: Engine, debian_image: str) -> Iterator[tuple[Machine, int]]:
    port = free_port()
    env = {
        "PORT": str(port),
        # Its own instance and network: it neither adopts nor cleans up anyone else's agents.
        "PARALLAX_INSTANCE": f"{PREFIX}-firstrun",
        "DOCKER_NETWORK": f"{PREFIX}-net",
    }
    machine = Machine(engine, debian_image, env)
    try:
        ca = choose_ca(None, None).data
        if ca is not None:
            machine.put("/", tar_of({"usr/local/share/ca-certificates/host-bundle.crt": ca}))
        yield machine, port
    finally:
        machine.remove()


def copy_checkout(machine: Machine, home: str, uid: int) -> str:
    files: dict[str, bytes | Path] = {f"parallax-docker/{n}": ROOT / n for n in checkout_files()}
    machine.put(home, tar_of(files, uid))
    return f"{home}/parallax-docker"


def wait_answering(
    machine: Machine, port: int, log: str, timeout_s: float = 1800
) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not machine.exec_running():
            raise AssertionError(f"run.sh ended:\n{machine.read(log)[-6000:]}")
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(1)
    raise AssertionError(f"the service never answered:\n{machine.read(log)[-6000:]}")


def check_first_run_output(output: str) -> None:
    print(output)  # shown with -s: what a newcomer sees
    assert "Deprecat" not in output, output[-4000:]
    assert "sudo: command not found" not in output and "Traceback" not in output, output[-4000:]


def test_run_sh_as_root_without_sudo_serves(fresh_machine: tuple[Machine, int]) -> None:
    machine, port = fresh_machine
    assert machine.run("command -v sudo python3 parallax-docker")[0] != 0
    checkout = copy_checkout(machine, "/root", 0)
    log = "/tmp/run.log"
    machine.start(f"cd {checkout} && bash scripts/run.sh", "root", log)
    health = wait_answering(machine, port, log)
    assert health.json()["runtime"]["synced"] is True
    assert httpx.get(f"http://127.0.0.1:{port}/ui/").status_code == 200
    check_first_run_output(machine.read(log))
    # The README's next lines: the CLI is on the PATH of a new login shell.
    code, output = machine.run(f"PARALLAX_URL=http://127.0.0.1:{port} parallax-docker ls")
    assert code == 0, output


def test_run_sh_as_a_user_with_sudo_serves(fresh_machine: tuple[Machine, int]) -> None:
    machine, port = fresh_machine
    socket_gid = os.stat(SOCKET).st_gid
    # The machine: sudo for a user "dev" (no password, as a scripted test needs), and the
    # socket's owner group named docker, as Debian's docker.io sets it up.
    code, output = machine.run(
        "apt-get update -qq"
        " && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sudo >/dev/null"
        f" && groupadd -g {socket_gid} docker"
        f" && useradd -m -u {USER_UID} -s /bin/bash -G sudo dev"
        " && echo 'dev ALL=(ALL:ALL) NOPASSWD: ALL' >/etc/sudoers.d/dev"
    )
    assert code == 0, output
    checkout = copy_checkout(machine, "/home/dev", USER_UID)
    log = "/tmp/run.log"
    machine.start(f"cd {checkout} && bash scripts/run.sh", "dev", log)
    wait_answering(machine, port, log)
    output = machine.read(log)
    check_first_run_output(output)
    assert "adding dev to group docker" in output
    code, groups = machine.run("id -nG dev")
    assert "docker" in groups.split()
    code, output = machine.run(f"PARALLAX_URL=http://127.0.0.1:{port} parallax-docker ls", "dev")
    assert code == 0, output


def test_test_sh_as_root_gets_to_pytest(fresh_machine: tuple[Machine, int]) -> None:
    machine, _ = fresh_machine
    checkout = copy_checkout(machine, "/root", 0)
    code, output = machine.run(
        f"cd {checkout} && bash scripts/test.sh --collect-only -q tests/unit/test_config.py",
        timeout_s=2000,
    )
    assert code == 0, output[-6000:]
    for step in ("== ruff", "== ruff format", "== mypy", "== import contracts", "== pytest"):
        assert step in output, output[-6000:]
    assert "Success: no issues found" in output
    assert "tests collected" in output
    check_first_run_output(output)
    code, found = machine.run("command -v chromium chromedriver")
    assert code == 0, found
