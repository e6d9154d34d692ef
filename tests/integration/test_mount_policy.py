"""What a request may mount from the host and which volumes it may name, on the real engine.

Each forbidden class of host path (docs/security.md, host_paths.py) read-only and read-write,
symlinks into one, read-write mounts outside PARALLAX_ALLOWED_HOST_PATHS, and the runtime's own
volumes (an execution's home) named by another request.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from parallax_docker.runtime.labels import home_volume
from tests.integration.conftest import PREFIX, SESSION, agent_body, session_objects
from tests.support.engine import Engine
from tests.support.server import ServiceProcess

pytestmark = pytest.mark.integration

VOLUME = (403, "VOLUME_FORBIDDEN")

# One or more members of each class; none of them is created or looked at by the test.
FORBIDDEN_CLASSES = [
    pytest.param("/usr", id="programs-usr"),
    pytest.param("/usr/local/bin", id="programs-usr-local-bin"),
    pytest.param("/usr/lib/x86_64-linux-gnu", id="libraries"),
    pytest.param("/bin", id="programs-bin"),
    pytest.param("/sbin", id="programs-sbin"),
    pytest.param("/lib", id="libraries-lib"),
    pytest.param("/lib64", id="libraries-lib64"),
    pytest.param("/opt/some-tool", id="third-party-opt"),
    pytest.param("/etc/cron.d", id="configuration-etc"),
    pytest.param("/boot", id="kernel-boot"),
    pytest.param("/var/lib", id="service-state-var-lib"),
    pytest.param("/var/log", id="logs"),
    pytest.param("/var/spool/cron", id="cron-spool"),
    pytest.param("/var/backups", id="backups"),
    pytest.param("/var/cache/debconf", id="caches"),
    pytest.param("/run/user", id="runtime-sockets"),
    pytest.param("/root", id="root-home"),
    pytest.param("/root/.ssh", id="root-ssh"),
    pytest.param("/root/project", id="under-root-home"),
    pytest.param("/home", id="all-homes"),
    pytest.param("/tmp", id="shared-scratch"),
    pytest.param("/tmp/.X11-unix", id="x11-sockets"),
    pytest.param("/tmp/ssh-XXXXabcd", id="ssh-agent-sockets"),
    pytest.param("/srv", id="all-of-srv"),
    pytest.param("/mnt", id="all-mounts"),
]


@pytest.mark.parametrize("mode", ["ro", "rw"])
@pytest.mark.parametrize("source", FORBIDDEN_CLASSES)
def test_system_and_credential_folders_are_refused_read_only_and_read_write(
    refused: Callable[..., Any], source: str, mode: str
) -> None:
    refused(*VOLUME, volumes=[f"{source}:/data:{mode}"])


@pytest.mark.parametrize(
    "name", [".ssh", ".aws", ".gnupg", ".kube", ".docker", ".netrc", ".git-credentials"]
)
def test_a_credentials_folder_is_refused_wherever_it_is(
    refused: Callable[..., Any], tmp_path: Path, name: str
) -> None:
    (tmp_path / "backup" / name).mkdir(parents=True)
    refused(*VOLUME, volumes=[f"{tmp_path / 'backup' / name}:/data:ro"])


@pytest.mark.parametrize(
    "target", ["/usr/local/bin", "/root/.ssh", "/var/lib", "/etc", "/tmp/.X11-unix"]
)
def test_a_symlink_into_a_forbidden_folder_is_refused(
    refused: Callable[..., Any], tmp_path: Path, target: str
) -> None:
    (tmp_path / "chain").symlink_to(target)
    (tmp_path / "innocent").symlink_to(tmp_path / "chain")
    refused(*VOLUME, volumes=[f"{tmp_path / 'innocent'}:/data:ro"])


def test_read_write_host_mounts_are_refused_without_an_allow_list(
    refused: Callable[..., Any], tmp_path: Path
) -> None:
    for entry in (f"{tmp_path}:/data", f"{tmp_path}:/data:rw"):
        body = refused(*VOLUME, volumes=[entry])
        assert "PARALLAX_ALLOWED_HOST_PATHS" in body["resolution"]


def test_read_only_host_mounts_of_a_project_folder_work_without_an_allow_list(
    spawn: Callable[..., dict[str, Any]], engine: Engine, tmp_path: Path
) -> None:
    tmp_path.chmod(0o755)
    (tmp_path / "readme").write_text("project")
    (tmp_path / "readme").chmod(0o644)
    handle = spawn(volumes=[f"{tmp_path}:/data:ro"])
    assert engine.exec(handle["containerName"], "cat", "/data/readme") == (0, "project")


def test_read_write_mounts_work_under_the_allow_list_and_nowhere_else(
    start_service: Callable[..., ServiceProcess], engine: Engine, tmp_path: Path
) -> None:
    allowed, other = tmp_path / "projects", tmp_path / "other"
    allowed.mkdir()
    other.mkdir()
    (allowed / "p1").mkdir(mode=0o777)
    (allowed / "p1").chmod(0o777)
    proc = start_service({"PARALLAX_ALLOWED_HOST_PATHS": str(allowed)})
    before = session_objects(engine)
    for entry in (f"{other}:/data", f"{other}:/data:ro", f"{allowed}/.ssh:/data"):
        response = httpx.post(proc.url + "/agents", json=agent_body(volumes=[entry]), timeout=60)
        assert response.status_code == 403, (entry, response.text)
    assert session_objects(engine) == before
    response = httpx.post(
        proc.url + "/agents", json=agent_body(volumes=[f"{allowed}/p1:/data"]), timeout=60
    )
    assert response.status_code == 201, response.text
    name = response.json()["containerName"]
    try:
        assert engine.exec(name, "touch", "/data/written")[0] == 0
        assert (allowed / "p1" / "written").exists()
    finally:
        engine.remove_container(name)


def test_the_allow_list_does_not_open_a_system_folder(
    start_service: Callable[..., ServiceProcess], engine: Engine
) -> None:
    proc = start_service({"PARALLAX_ALLOWED_HOST_PATHS": "/usr/local"})
    response = httpx.post(
        proc.url + "/agents", json=agent_body(volumes=["/usr/local/bin:/x"]), timeout=60
    )
    assert response.status_code == 403
    assert response.json()["code"] == "VOLUME_FORBIDDEN"


def test_the_state_directory_is_never_mounted(
    refused: Callable[..., Any], service: ServiceProcess
) -> None:
    state = service.env["PARALLAX_STATE_DIR"]
    refused(*VOLUME, volumes=[f"{state}:/loot:ro"])


# -- named volumes ------------------------------------------------------------------------------


def test_another_executions_home_cannot_be_mounted_by_name(
    spawn: Callable[..., dict[str, Any]],
    refused: Callable[..., Any],
    engine: Engine,
    service: ServiceProcess,
) -> None:
    execution = f"{PREFIX}-x{uuid.uuid4().hex[:6]}"
    spawn(executionId=execution, type="custom")
    home = home_volume(execution, service.env["PARALLAX_INSTANCE"])
    assert any(v["Name"] == home for v in engine.volumes())
    for mode in ("ro", "rw"):
        refused(*VOLUME, volumes=[f"{home}:/loot:{mode}"])
        refused(*VOLUME, volumes=[f"{home}:/loot:{mode}"], executionId=f"{execution}-other")


def test_the_runtime_volume_prefix_cannot_be_taken_ahead_of_an_execution(
    refused: Callable[..., Any], service: ServiceProcess
) -> None:
    # Were it allowed, this volume would later become the home of execution "later".
    later = home_volume(f"{PREFIX}-later", service.env["PARALLAX_INSTANCE"])
    refused(*VOLUME, volumes=[f"{later}:/data"])
    refused(*VOLUME, volumes=["parallax-anything:/data"])


def test_a_volume_labelled_as_the_runtimes_own_is_refused_whatever_its_name(
    refused: Callable[..., Any], engine: Engine, service: ServiceProcess
) -> None:
    name = f"{PREFIX}-owned-{uuid.uuid4().hex[:6]}"
    labels = {
        "parallax.managed": "true",
        "parallax.instance": service.env["PARALLAX_INSTANCE"],
        "parallax.volume.owner": "runtime",
        "test-session": SESSION,
    }
    engine.create_volume(name, labels=labels)
    try:
        refused(*VOLUME, volumes=[f"{name}:/data"])
    finally:
        engine.remove_volume(name)


def test_a_volume_a_request_named_stays_shareable_by_name(
    spawn: Callable[..., dict[str, Any]], engine: Engine
) -> None:
    name = f"{PREFIX}-shared-{uuid.uuid4().hex[:6]}"
    first = spawn(volumes=[f"{name}:/shared"], executionId=f"{PREFIX}-e1")
    second = spawn(volumes=[f"{name}:/shared:ro"])
    for handle in (first, second):
        mounts = engine.inspect(handle["containerName"])["Mounts"]  # type: ignore[index]
        assert any(m.get("Name") == name and m["Destination"] == "/shared" for m in mounts)
