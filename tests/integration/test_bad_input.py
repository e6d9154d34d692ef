"""Hostile requests against the real service: each is refused with its status and code, and
leaves no container, network or volume behind.

Groups: container options a request must never get (privileged, capabilities, namespaces,
devices, security profiles, user, runtime), every way to reach the host through ``volumes``, and
the input limits. The limits are the named constants in parallax_docker.models (documented in
docs/security.md).
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from parallax_docker.models import (
    LABEL_KEY_MAX,
    LABEL_VALUE_MAX,
    MAX_CAPABILITIES,
    MAX_COMMAND_ARG_CHARS,
    MAX_COMMAND_ARGS,
    MAX_ENV_ENTRIES,
    MAX_ENV_VALUE_BYTES,
    MAX_LABELS,
    MAX_VOLUMES,
    NAME_MAX,
    SHORT_TEXT_MAX,
    WORKDIR_MAX,
)
from tests.integration.conftest import PREFIX, SECRETS_DIR, agent_body, session_objects
from tests.support.engine import Engine
from tests.support.server import ServiceProcess
from tests.support.sockproxy import SocketProxy

VALIDATION = (422, "VALIDATION_ERROR")
VOLUME = (403, "VOLUME_FORBIDDEN")
NET = (403, "NETWORK_FORBIDDEN")
RUNTIME = (403, "RUNTIME_FORBIDDEN")
TOO_LARGE = (413, "PAYLOAD_TOO_LARGE")
MEMORY = {"memory": "64m", "cpu": 0.25}


@pytest.fixture
def hostile(api: httpx.Client, engine: Engine) -> Callable[..., dict[str, Any]]:
    """Send a request that must be refused; check status, code, body shape, nothing created."""

    def send(expected: tuple[int, str], method: str, path: str, **options: Any) -> dict[str, Any]:
        before = session_objects(engine)
        response = api.request(method, path, **options)
        status, code = expected
        assert response.status_code == status, response.text[:500]
        body: dict[str, Any] = response.json()
        assert body["code"] == code, body
        assert body["error"] and body["resolution"]
        assert session_objects(engine) == before
        return body

    return send


def spawn_with(**fields: Any) -> dict[str, Any]:
    return agent_body(**fields)


# -- container options: no field a request sends can ask for them ------------------------------

OPTION_BODIES: list[Any] = [
    pytest.param({"privileged": True}, id="privileged"),
    pytest.param({"Privileged": True}, id="Privileged"),
    pytest.param({"capAdd": ["SYS_ADMIN"]}, id="capAdd"),
    pytest.param({"cap_add": ["ALL"]}, id="cap_add"),
    pytest.param({"CapAdd": ["NET_ADMIN"]}, id="CapAdd"),
    pytest.param({"capDrop": []}, id="capDrop-empty"),
    pytest.param({"devices": ["/dev/sda:/dev/sda"]}, id="devices"),
    pytest.param({"Devices": [{"PathOnHost": "/dev/mem"}]}, id="Devices"),
    pytest.param({"securityOpt": ["seccomp=unconfined"]}, id="securityOpt-seccomp"),
    pytest.param({"security_opt": ["apparmor=unconfined"]}, id="security_opt-apparmor"),
    pytest.param({"user": "root"}, id="user-root"),
    pytest.param({"User": "0:0"}, id="User"),
    pytest.param({"pidMode": "host"}, id="pidMode"),
    pytest.param({"ipcMode": "host"}, id="ipcMode"),
    pytest.param({"utsMode": "host"}, id="utsMode"),
    pytest.param({"usernsMode": "host"}, id="usernsMode"),
    pytest.param({"networkMode": "host"}, id="networkMode"),
    pytest.param({"hostConfig": {"Privileged": True}}, id="hostConfig"),
    pytest.param({"HostConfig": {"CapAdd": ["ALL"]}}, id="HostConfig"),
    pytest.param({"entrypoint": ["/bin/sh"]}, id="entrypoint"),
    pytest.param({"binds": ["/:/host"]}, id="binds"),
    pytest.param({"Binds": ["/var/run/docker.sock:/s"]}, id="Binds"),
    pytest.param({"mounts": [{"Type": "bind", "Source": "/"}]}, id="mounts"),
    pytest.param({"tmpfs": {"/x": "exec"}}, id="tmpfs"),
    pytest.param({"sysctls": {"kernel.core_pattern": "|/x"}}, id="sysctls"),
    pytest.param({"readOnly": False}, id="readOnly"),
    pytest.param({"groupAdd": ["docker"]}, id="groupAdd"),
    pytest.param({"cgroupParent": "/"}, id="cgroupParent"),
    pytest.param({"resources": {**MEMORY, "privileged": True}}, id="resources.privileged"),
    pytest.param({"resources": {**MEMORY, "memorySwap": -1}}, id="resources.memorySwap"),
    pytest.param({"resources": {**MEMORY, "devices": ["/dev/kmsg"]}}, id="resources.devices"),
    pytest.param({"resources": {**MEMORY, "pidsLimit": -1}}, id="resources.pidsLimit"),
    pytest.param({"credentials": {"custom": {"A=B": "x"}}}, id="credentials.custom-equals"),
    pytest.param({"credentials": {"custom": {"1X": "x"}}}, id="credentials.custom-digit"),
    pytest.param({"credentials": {"custom": {"": "x"}}}, id="credentials.custom-empty"),
    pytest.param({"credentials": {"custom": {"LD PRELOAD": "x"}}}, id="credentials.custom-space"),
    pytest.param({"credentials": {"privileged": True}}, id="credentials.privileged"),
    pytest.param({"credentials": {"custom": {"K": {"v": 1}}}}, id="credentials.custom-object"),
    pytest.param({"env": {"BAD-KEY": "x"}}, id="env-key-dash"),
    pytest.param({"env": {"K": 1}}, id="env-value-number"),
    pytest.param({"network": f"{PREFIX}-n", "networkAliases": ["x"]}, id="networkAliases"),
]


@pytest.mark.parametrize("fields", OPTION_BODIES)
def test_container_options_are_refused(hostile: Callable[..., Any], fields: dict[str, Any]) -> None:
    hostile(VALIDATION, "POST", "/agents", json=spawn_with(**fields))


def test_a_runtime_not_allowed_is_refused(hostile: Callable[..., Any]) -> None:
    hostile(RUNTIME, "POST", "/agents", json=spawn_with(runtime="runc"))


@pytest.mark.parametrize("network", ["host", "bridge", "default", "container:parallax-x", "HOST"])
def test_isolation_breaking_networks_are_refused(hostile: Callable[..., Any], network: str) -> None:
    hostile(NET, "POST", "/agents", json=spawn_with(network=network))


@pytest.mark.parametrize(
    "labels",
    [
        {"parallax.managed": "false"},
        {"parallax.agent.id": "someone-else"},
        {"parallax.agent.image": "x"},
        {"parallax.anything": "x"},
    ],
    ids=["managed", "agent.id", "agent.image", "prefix"],
)
def test_labels_cannot_overwrite_the_runtimes_own(
    hostile: Callable[..., Any], labels: dict[str, str]
) -> None:
    hostile(VALIDATION, "POST", "/agents", json=spawn_with(labels=labels))


# -- mounts: every way to the host through volumes ---------------------------------------------

VOLUME_ENTRIES: list[Any] = [
    # The Docker socket by any path, and its parents.
    pytest.param("/var/run/docker.sock:/s", VOLUME, id="socket"),
    pytest.param("/run/docker.sock:/s", VOLUME, id="socket-run-alias"),
    pytest.param("//var//run//docker.sock:/s", VOLUME, id="socket-slashes"),
    pytest.param("/var/run/../run/docker.sock:/s", VOLUME, id="socket-dotdot"),
    pytest.param("/var/run:/s", VOLUME, id="socket-parent-var-run"),
    pytest.param("/run:/s", VOLUME, id="socket-parent-run"),
    pytest.param("/var:/s", VOLUME, id="socket-grandparent-var"),
    # Host system paths, through '..' and magic links too.
    pytest.param("/:/host", VOLUME, id="root"),
    pytest.param("/etc:/x", VOLUME, id="etc"),
    pytest.param("/tmp/../etc:/x", VOLUME, id="dotdot-etc"),
    pytest.param("/tmp/../../../../etc/shadow:/x", VOLUME, id="dotdot-shadow"),
    pytest.param("/proc/self/root:/x", VOLUME, id="proc-self-root"),
    pytest.param("/proc/1/root/etc:/x", VOLUME, id="proc-1-root"),
    pytest.param("/sys/fs/cgroup:/x", VOLUME, id="cgroup"),
    pytest.param("/root:/x", VOLUME, id="root-home"),
    pytest.param("/boot:/x", VOLUME, id="boot"),
    pytest.param("/var/lib/docker:/x", VOLUME, id="docker-data"),
    pytest.param("/var/lib/containerd:/x", VOLUME, id="containerd-data"),
    # Device files.
    pytest.param("/dev/null:/x", VOLUME, id="dev-null"),
    pytest.param("/dev/mem:/x", VOLUME, id="dev-mem"),
    pytest.param("/dev/shm:/x", VOLUME, id="dev-shm"),
    # The agents' own secret files.
    pytest.param(f"{SECRETS_DIR}:/x", VOLUME, id="secrets-dir"),
    pytest.param(f"{SECRETS_DIR.parent}:/x", VOLUME, id="secrets-dir-parent"),
    # Relative paths and names that are not volume names.
    pytest.param("relative/path:/x", VALIDATION, id="relative"),
    pytest.param("./x:/x", VALIDATION, id="dot-relative"),
    pytest.param("../x:/x", VALIDATION, id="dotdot-relative"),
    pytest.param("~/x:/x", VALIDATION, id="tilde"),
    pytest.param("..:/x", VALIDATION, id="dotdot-name"),
    pytest.param("/tmp:x", VALIDATION, id="relative-target"),
    # Extra colon fields, propagation and SELinux options.
    pytest.param("/tmp:/x:ro:extra", VALIDATION, id="extra-field"),
    pytest.param("/tmp:/x:rw:z", VALIDATION, id="extra-z"),
    pytest.param("/tmp:/x:z", VALIDATION, id="selinux-z"),
    pytest.param("/tmp:/x:Z", VALIDATION, id="selinux-Z"),
    pytest.param("/tmp:/x:shared", VALIDATION, id="shared"),
    pytest.param("/tmp:/x:rshared", VALIDATION, id="rshared"),
    pytest.param("/tmp:/x:slave", VALIDATION, id="slave"),
    pytest.param("/tmp:/x:rslave", VALIDATION, id="rslave"),
    pytest.param("/tmp:/x:ro,rshared", VALIDATION, id="ro-rshared"),
    pytest.param("/tmp:/x:rw,z", VALIDATION, id="rw-z"),
    pytest.param("/tmp:/x:nocopy", VALIDATION, id="nocopy"),
    pytest.param("/tmp", VALIDATION, id="no-target"),
    pytest.param("/tmp:/x\n", VALIDATION, id="control-character"),
    # Targets over the kernel's views and the runtime's own mounts.
    pytest.param("{tmp}:/proc", VOLUME, id="target-proc"),
    pytest.param("{tmp}:/proc/sys", VOLUME, id="target-proc-sys"),
    pytest.param("{tmp}:/sys", VOLUME, id="target-sys"),
    pytest.param("{tmp}:/dev", VOLUME, id="target-dev"),
    pytest.param("{tmp}:/dev/shm", VOLUME, id="target-dev-shm"),
    pytest.param("{tmp}:/run/parallax", VOLUME, id="target-run-parallax"),
    pytest.param("{tmp}:/run/parallax/env", VOLUME, id="target-env-file"),
    pytest.param("{tmp}:/tmp", VOLUME, id="target-tmp"),
    pytest.param("{tmp}:/", VOLUME, id="target-root"),
    pytest.param("{tmp}://proc", VOLUME, id="target-double-slash"),
    pytest.param("{tmp}:/x/../proc", VOLUME, id="target-dotdot"),
    pytest.param("{tmp}:/x:ro", None, id="control-allowed"),
]


@pytest.fixture
def host_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.mark.parametrize(("entry", "expected"), VOLUME_ENTRIES)
def test_volume_entries_that_reach_the_host_are_refused(
    hostile: Callable[..., Any],
    api: httpx.Client,
    engine: Engine,
    host_dir: Path,
    entry: str,
    expected: tuple[int, str] | None,
) -> None:
    volumes = [entry.format(tmp=host_dir)]
    if expected is not None:
        hostile(expected, "POST", "/agents", json=spawn_with(volumes=volumes))
        return
    # The control: the same shape with a plain directory works, so the refusals are the rules'.
    response = api.post("/agents", json=spawn_with(volumes=volumes))
    assert response.status_code == 201, response.text
    engine.remove_container(response.json()["containerName"])


def _symlink_to(target: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        link = tmp / "innocent"
        link.symlink_to(target)
        return link

    return make


def _symlink_chain(tmp: Path) -> Path:
    (tmp / "two").symlink_to("/etc")
    (tmp / "one").symlink_to(tmp / "two")
    return tmp / "one"


def _symlink_dotdot(tmp: Path) -> Path:
    (tmp / "deep").mkdir()
    (tmp / "up").symlink_to("deep/../../../../../../etc")
    return tmp / "up"


def _char_device(tmp: Path) -> Path:
    path = tmp / "null"
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    return path


def _block_device(tmp: Path) -> Path:
    path = tmp / "disk"
    os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(7, 0))
    return path


def _fifo(tmp: Path) -> Path:
    path = tmp / "pipe"
    os.mkfifo(path)
    return path


def _unix_socket(tmp: Path) -> Path:
    path = tmp / "other.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()
    return path


def _hard_link(tmp: Path) -> Path:
    original = tmp / "original"
    original.write_text("x")
    os.link(original, tmp / "alias")
    return tmp / "alias"


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(_symlink_to("/var/run/docker.sock"), id="symlink-socket"),
        pytest.param(_symlink_to("/run"), id="symlink-socket-parent"),
        pytest.param(_symlink_to("/etc"), id="symlink-etc"),
        pytest.param(_symlink_to("/"), id="symlink-root"),
        pytest.param(_symlink_chain, id="symlink-chain"),
        pytest.param(_symlink_dotdot, id="symlink-dotdot"),
        pytest.param(_char_device, id="char-device"),
        pytest.param(_block_device, id="block-device"),
        pytest.param(_fifo, id="fifo"),
        pytest.param(_unix_socket, id="unix-socket"),
        pytest.param(_hard_link, id="hard-link"),
    ],
)
def test_host_files_that_lead_out_are_refused(
    hostile: Callable[..., Any], tmp_path: Path, make: Callable[[Path], Path]
) -> None:
    if os.geteuid() != 0 and make in (_char_device, _block_device):
        pytest.skip("mknod needs root")
    source = make(tmp_path)
    hostile(VOLUME, "POST", "/agents", json=spawn_with(volumes=[f"{source}:/data"]))


@pytest.fixture
def bind_alias(tmp_path: Path) -> Iterator[Path]:
    """A bind mount of /run elsewhere on the host: the same directory under another name."""
    alias = tmp_path / "alias"
    alias.mkdir()
    mounted = subprocess.run(["mount", "--bind", "/run", str(alias)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("bind mounts need root (CAP_SYS_ADMIN)")
    yield alias
    subprocess.run(["umount", "-l", str(alias)], check=False, capture_output=True)


def test_a_bind_mount_alias_of_a_protected_path_is_refused(
    hostile: Callable[..., Any], bind_alias: Path
) -> None:
    hostile(VOLUME, "POST", "/agents", json=spawn_with(volumes=[f"{bind_alias}:/data"]))


def test_the_parent_of_a_custom_docker_socket_is_refused(
    start_service: Callable[..., ServiceProcess], engine: Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "engine"
    folder.mkdir()
    proxy = SocketProxy(folder / "docker.sock")
    proxy.start()
    try:
        proc = start_service({"DOCKER_SOCKET": str(folder / "docker.sock")})
        before = session_objects(engine)
        for entry in (f"{folder}:/data", f"{tmp_path}:/data", f"{folder}/docker.sock:/s"):
            response = httpx.post(
                proc.url + "/agents", json=spawn_with(volumes=[entry]), timeout=60
            )
            assert response.status_code == 403, (entry, response.text)
            assert response.json()["code"] == "VOLUME_FORBIDDEN"
        assert session_objects(engine) == before
    finally:
        proxy.close()


def test_an_unmanaged_named_volume_stays_refused(
    hostile: Callable[..., Any], engine: Engine
) -> None:
    name = f"{PREFIX}-host-volume-{uuid.uuid4().hex[:6]}"
    engine.create_volume(name)
    try:
        hostile(VOLUME, "POST", "/agents", json=spawn_with(volumes=[f"{name}:/data"]))
    finally:
        engine.remove_volume(name)


# -- input limits -------------------------------------------------------------------------------


def _many(count: int, make: Callable[[int], Any]) -> list[Any]:
    return [make(i) for i in range(count)]


LIMIT_BODIES: list[Any] = [
    pytest.param({"env": {f"K{i}": "v" for i in range(MAX_ENV_ENTRIES + 1)}}, id="env-entries"),
    pytest.param(
        {
            "env": {f"E{i}": "v" for i in range(MAX_ENV_ENTRIES // 2 + 1)},
            "credentials": {"custom": {f"C{i}": "v" for i in range(MAX_ENV_ENTRIES // 2 + 1)}},
        },
        id="env-plus-credentials-entries",
    ),
    pytest.param({"env": {"K" * 256: "v"}}, id="env-key-length"),
    pytest.param({"env": {"K": "v" * (MAX_ENV_VALUE_BYTES + 1)}}, id="env-value-size"),
    pytest.param({"env": {"K": "a\u0000b"}}, id="env-value-nul"),
    pytest.param(
        {"volumes": _many(MAX_VOLUMES + 1, lambda i: f"{PREFIX}-v{i}:/v{i}")}, id="volumes"
    ),
    pytest.param({"volumes": ["/" + "a" * 9000 + ":/x"]}, id="volume-entry-length"),
    pytest.param({"labels": {f"k{i}": "v" for i in range(MAX_LABELS + 1)}}, id="labels"),
    pytest.param({"labels": {"k" * (LABEL_KEY_MAX + 1): "v"}}, id="label-key-length"),
    pytest.param({"labels": {"k": "v" * (LABEL_VALUE_MAX + 1)}}, id="label-value-length"),
    pytest.param({"labels": {"bad key": "v"}}, id="label-key-space"),
    pytest.param({"labels": {"-leading": "v"}}, id="label-key-dash"),
    pytest.param({"labels": {"k": 1}}, id="label-value-number"),
    pytest.param({"capabilities": ["c"] * (MAX_CAPABILITIES + 1)}, id="capabilities"),
    pytest.param({"capabilities": ["c" * (SHORT_TEXT_MAX + 1)]}, id="capability-length"),
    pytest.param({"capabilities": [""]}, id="capability-empty"),
    pytest.param({"command": ["x"] * (MAX_COMMAND_ARGS + 1)}, id="command-args"),
    pytest.param({"command": ["x" * (MAX_COMMAND_ARG_CHARS + 1)]}, id="command-arg-length"),
    pytest.param({"command": ["a\u0000b"]}, id="command-nul"),
    pytest.param({"command": []}, id="command-empty"),
    pytest.param({"command": "unterminated 'quote"}, id="command-unsplittable"),
    pytest.param({"name": "n" * (NAME_MAX + 1)}, id="name-length"),
    pytest.param({"name": "has space"}, id="name-space"),
    pytest.param({"name": "-leading"}, id="name-dash"),
    pytest.param({"name": "a/b"}, id="name-slash"),
    pytest.param({"name": "ağent"}, id="name-unicode"),
    pytest.param({"name": ""}, id="name-empty"),
    pytest.param({"id": "i" * (NAME_MAX + 1)}, id="id-length"),
    pytest.param({"id": "../escape"}, id="id-dotdot"),
    pytest.param({"id": "a:b"}, id="id-colon"),
    pytest.param({"executionId": "x y"}, id="execution-id"),
    pytest.param({"role": "r" * (SHORT_TEXT_MAX + 1)}, id="role-length"),
    pytest.param({"reportsTo": ""}, id="reports-to-empty"),
    pytest.param({"workdir": "relative"}, id="workdir-relative"),
    pytest.param({"workdir": "/" + "w" * WORKDIR_MAX}, id="workdir-length"),
    pytest.param({"image": "../../containers/json"}, id="image-traversal"),
    pytest.param({"image": "x?all=1"}, id="image-query"),
    pytest.param({"image": "a" * 300}, id="image-length"),
    pytest.param({"runtime": "bad name"}, id="runtime-name"),
    pytest.param({"network": "n" * (NAME_MAX + 1)}, id="network-length"),
    pytest.param({"network": "bad name!"}, id="network-name"),
    pytest.param({"type": "root"}, id="type-unknown"),
    pytest.param({"idleTimeout": 0}, id="idle-timeout-zero"),
    pytest.param({"resources": {"memory": "1m"}}, id="memory-below-minimum"),
    pytest.param({"resources": {"memory": "-1"}}, id="memory-negative"),
    pytest.param({"resources": {"cpu": "NaN"}}, id="cpu-nan"),
    pytest.param({"resources": {**MEMORY, "timeout": 0}}, id="timeout-zero"),
]


@pytest.mark.parametrize("fields", LIMIT_BODIES)
def test_spawn_input_beyond_its_limits_is_refused(
    hostile: Callable[..., Any], fields: dict[str, Any]
) -> None:
    hostile(VALIDATION, "POST", "/agents", json=spawn_with(**fields))


@pytest.mark.parametrize(
    ("method", "path", "options", "expected"),
    [
        pytest.param(
            "GET", "/agents/agent-x/logs", {"params": {"tail": -1}}, VALIDATION, id="tail-negative"
        ),
        pytest.param(
            "GET", "/agents/agent-x/logs", {"params": {"tail": 10_001}}, VALIDATION, id="tail-above"
        ),
        pytest.param(
            "GET", "/agents/agent-x/logs", {"params": {"tail": "all"}}, VALIDATION, id="tail-text"
        ),
        pytest.param(
            "GET",
            "/agents/agent-x/logs",
            {"params": {"since": "x" * 65}},
            VALIDATION,
            id="since-length",
        ),
        pytest.param(
            "DELETE",
            "/agents/agent-x",
            {"params": {"timeout": -1}},
            VALIDATION,
            id="timeout-negative",
        ),
        pytest.param(
            "DELETE",
            "/agents/agent-x",
            {"params": {"timeout": 600_001}},
            VALIDATION,
            id="timeout-above",
        ),
        pytest.param(
            "GET", "/agents", {"params": {"status": "sleeping"}}, VALIDATION, id="status-filter"
        ),
        pytest.param(
            "GET", "/agents", {"params": [("type", "x")] * 17}, VALIDATION, id="filter-count"
        ),
        pytest.param(
            "POST",
            "/agents",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            VALIDATION,
            id="body-not-json",
        ),
        pytest.param("POST", "/agents", {"json": [1, 2]}, VALIDATION, id="body-array"),
        pytest.param("POST", "/agents", {"json": None}, VALIDATION, id="body-null"),
        pytest.param(
            "POST",
            "/agents",
            {"content": b"x" * (3 * 1024 * 1024), "headers": {"content-type": "application/json"}},
            TOO_LARGE,
            id="body-too-large",
        ),
    ],
)
def test_other_inputs_beyond_their_limits_are_refused(
    hostile: Callable[..., Any],
    method: str,
    path: str,
    options: dict[str, Any],
    expected: tuple[int, str],
) -> None:
    hostile(expected, method, path, **options)


def test_no_refusal_echoes_a_secret_value(api: httpx.Client) -> None:
    secret = f"do-not-echo-{uuid.uuid4().hex}"
    for fields in (
        {"env": {"BAD KEY": secret}},
        {"env": {"K": secret + "\u0000"}},
        {"credentials": {"custom": {"1BAD": secret}}},
        {"env": {"K": secret}, "resources": {"memory": "lots"}},
        {"env": {"K": secret}, "volumes": ["/etc:/x"]},
    ):
        response = api.post("/agents", json=spawn_with(**fields))
        assert 400 <= response.status_code < 500
        assert secret not in response.text
