"""Container root is never host root: images whose user is root run unprivileged, on the engine.

The proof is the host's own file system: a root-owned host folder, open to writes through
PARALLAX_ALLOWED_HOST_PATHS, is written by a root image only when PARALLAX_ALLOW_ROOT is set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import agent_body
from tests.integration.test_terminal import screen_until, terminal
from tests.support.engine import Engine
from tests.support.images import DEFAULT_GROUP, DEFAULT_PASSWD, user_image
from tests.support.server import ServiceProcess

SLEEP = ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
NONROOT = "65532"


@pytest.fixture
def root_folder(tmp_path: Path) -> Path:
    """A host folder owned by root, writable by its owner only (like /usr/local/bin)."""
    folder = tmp_path / "host-bin"
    folder.mkdir(mode=0o755)
    os.chown(folder, 0, 0)
    tmp_path.chmod(0o755)
    return folder


@pytest.fixture
def services(
    start_service: Callable[..., ServiceProcess], root_folder: Path
) -> Iterator[Callable[[bool], ServiceProcess]]:
    def start(allow_root: bool) -> ServiceProcess:
        env = {"PARALLAX_ALLOWED_HOST_PATHS": str(root_folder.parent)}
        if allow_root:
            env["PARALLAX_ALLOW_ROOT"] = "true"
        return start_service(env)

    yield start


def _spawn_with_folder(proc: ServiceProcess, user: str | None, folder: Path) -> str:
    """A container of an image with ``USER user``, the root-owned folder mounted read-write."""
    body = agent_body(image=user_image(user), command=SLEEP, volumes=[f"{folder}:/host-bin"])
    response = httpx.post(proc.url + "/agents", json=body, timeout=90)
    assert response.status_code == 201, response.text
    return str(response.json()["containerName"])


def _ids(engine: Engine, name: str) -> tuple[str, str]:
    code, uid = engine.exec(name, "id", "-u")
    assert code == 0
    code, groups = engine.exec(name, "id", "-G")
    assert code == 0
    return uid.strip(), groups.strip()


@pytest.mark.parametrize(
    "user",
    [None, "root", "0", "0:0", "root:root"],
    ids=["no-user", "root", "0", "0:0", "root:root"],
)
def test_an_image_without_a_non_root_user_cannot_write_a_root_owned_host_folder(
    services: Callable[[bool], ServiceProcess],
    engine: Engine,
    root_folder: Path,
    user: str | None,
) -> None:
    name = _spawn_with_folder(services(False), user, root_folder)
    try:
        assert engine.inspect(name)["Config"]["User"] == f"{NONROOT}:{NONROOT}"  # type: ignore[index]
        assert _ids(engine, name) == (NONROOT, NONROOT)
        code, _ = engine.exec(name, "sh", "-c", "echo pwned > /host-bin/planted")
        assert code != 0
        assert not (root_folder / "planted").exists()
        # Its home and workspace are writable as before.
        assert engine.exec(name, "sh", "-c", "touch /home/agent/x /workspace/y")[0] == 0
    finally:
        engine.remove_container(name)


def test_with_allow_root_the_same_image_runs_as_root(
    services: Callable[[bool], ServiceProcess], engine: Engine, root_folder: Path
) -> None:
    name = _spawn_with_folder(services(True), None, root_folder)
    try:
        assert _ids(engine, name)[0] == "0"
        assert engine.exec(name, "sh", "-c", "echo ok > /host-bin/planted")[0] == 0
        assert (root_folder / "planted").stat().st_uid == 0
    finally:
        engine.remove_container(name)


@pytest.mark.parametrize(
    ("user", "passwd", "group", "expected"),
    [
        # A name that is uid 0 in the image's own /etc/passwd.
        (
            "toor",
            DEFAULT_PASSWD + b"toor:x:0:0::/root:/bin/sh\n",
            DEFAULT_GROUP,
            ("65532", "65532"),
        ),
        # A user whose primary group is 0.
        ("1000:0", DEFAULT_PASSWD, DEFAULT_GROUP, ("1000", "65532")),
        ("1000:root", DEFAULT_PASSWD, DEFAULT_GROUP, ("1000", "65532")),
        ("svc", DEFAULT_PASSWD + b"svc:x:1001:0::/tmp:/bin/sh\n", DEFAULT_GROUP, ("1001", "65532")),
        # A user the image's /etc/group puts in the root group.
        ("agent", DEFAULT_PASSWD, b"root:x:0:agent\nagent:x:1000:\n", ("1000", "1000")),
        # A plain non-root user keeps its own ids, by the project's name or another.
        ("agent", DEFAULT_PASSWD, DEFAULT_GROUP, ("1000", "1000")),
        (
            "worker",
            DEFAULT_PASSWD + b"worker:x:2000:2000::/tmp:/bin/sh\n",
            DEFAULT_GROUP + b"worker:x:2000:\n",
            ("2000", "2000"),
        ),
    ],
    ids=[
        "name-uid-0",
        "gid-0",
        "group-root",
        "primary-group-0",
        "member-of-root",
        "non-root",
        "other-name",
    ],
)
def test_root_by_another_name_or_group_runs_unprivileged(
    spawn: Callable[..., dict[str, Any]],
    engine: Engine,
    user: str,
    passwd: bytes,
    group: bytes,
    expected: tuple[str, str],
) -> None:
    handle = spawn(image=user_image(user, passwd, group), command=SLEEP)
    assert _ids(engine, handle["containerName"]) == expected
    # Whoever it turned out to be, its home and workspace are its own to write.
    touched = engine.exec(handle["containerName"], "touch", "/home/agent/x", "/workspace/y")
    assert touched[0] == 0


def test_the_terminal_of_a_root_image_is_unprivileged(
    spawn: Callable[..., dict[str, Any]], service: ServiceProcess
) -> None:
    handle = spawn(image=user_image(None), command=SLEEP)
    with terminal(service, handle["id"]) as ws:
        ws.send(b"echo ids-$(id -u)-$(id -g)-$(id -G)\r")
        screen_until(ws, "ids-65532-65532-65532\r\n")
