"""The hardening policy (parallax_docker.security): networks, host paths, targets, tmpfs."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from parallax_docker.backends.base import MountSpec
from parallax_docker.errors import (
    NetworkForbiddenError,
    RuntimeForbiddenError,
    RuntimeUnavailableError,
    ValidationError,
    VolumeForbiddenError,
)
from parallax_docker.host_paths import check_host_path
from parallax_docker.resources import VolumeRequest
from parallax_docker.run_as import plan_user
from parallax_docker.security import (
    AGENT_HOME,
    AGENT_RUN_DIR,
    AGENT_WORKSPACE,
    NetworkChoice,
    check_image_ref,
    check_runtime_available,
    check_target,
    choose_network,
    choose_runtime,
    runtime_tmpfs,
    volume_mounts,
)

DEFAULT = "parallax-agents"
NO_SOCKET = "/nonexistent/docker.sock"


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: Unix socket paths are limited to about 100 bytes."""
    path = Path(tempfile.mkdtemp(prefix="pxu-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path)


@pytest.fixture
def docker_socket(short_dir: Path) -> Iterator[Path]:
    """A real Unix socket file standing in for the Docker socket."""
    path = short_dir / "run" / "docker.sock"
    path.parent.mkdir()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        yield path


# -- networks ---------------------------------------------------------------------------------


def test_choose_network_gives_the_default_network_when_none_is_asked_for() -> None:
    assert choose_network(None, DEFAULT) == NetworkChoice(DEFAULT)


def test_choose_network_accepts_the_default_network_by_name() -> None:
    assert choose_network(DEFAULT, DEFAULT) == NetworkChoice(DEFAULT)


def test_choose_network_allows_none_without_managing_a_network() -> None:
    choice = choose_network("none", DEFAULT)
    assert choice.is_none
    assert choice.managed is False


def test_choose_network_maps_internal_to_an_internal_sibling_of_the_default() -> None:
    assert choose_network("internal", DEFAULT) == NetworkChoice(
        f"{DEFAULT}-internal", internal=True
    )


def test_choose_network_accepts_a_named_network_as_a_managed_one() -> None:
    assert choose_network("team-a.net_1", DEFAULT) == NetworkChoice("team-a.net_1")


@pytest.mark.parametrize(
    "network", ["host", "bridge", "default", "HOST", "Bridge", "container:abc", "container:", "a:b"]
)
def test_choose_network_refuses_modes_that_break_isolation(network: str) -> None:
    with pytest.raises(NetworkForbiddenError) as info:
        choose_network(network, DEFAULT)
    assert info.value.code == "NETWORK_FORBIDDEN"
    assert info.value.http_status == 403


@pytest.mark.parametrize("network", ["", "-net", "net work", "net/1", "ne\x00t", "é"])
def test_choose_network_refuses_invalid_names(network: str) -> None:
    with pytest.raises(ValidationError):
        choose_network(network, DEFAULT)


def test_choose_network_refuses_a_name_with_a_trailing_newline() -> None:
    with pytest.raises(ValidationError):
        choose_network("team-net\n", DEFAULT)


# -- host paths -------------------------------------------------------------------------------


def test_check_host_path_returns_the_resolved_path_of_an_ordinary_directory(
    short_dir: Path,
) -> None:
    project = short_dir / "project"
    project.mkdir()
    assert check_host_path(str(project), docker_socket=NO_SOCKET) == str(project.resolve())


def test_check_host_path_resolves_a_symlink_to_an_ordinary_directory(short_dir: Path) -> None:
    project = short_dir / "project"
    project.mkdir()
    (short_dir / "link").symlink_to(project)
    assert check_host_path(str(short_dir / "link"), docker_socket=NO_SOCKET) == str(project)


def test_check_host_path_refuses_a_relative_path() -> None:
    with pytest.raises(VolumeForbiddenError, match="not absolute"):
        check_host_path("project", docker_socket=NO_SOCKET)


def test_check_host_path_reports_a_missing_path_as_a_validation_error(short_dir: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist") as info:
        check_host_path(str(short_dir / "missing"), docker_socket=NO_SOCKET)
    assert info.value.code == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    "path", ["/", "/etc", "/etc/hostname", "/proc", "/proc/self", "/sys", "/dev", "/run", "/root"]
)
def test_check_host_path_refuses_system_paths(path: str) -> None:
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist on this host")
    with pytest.raises(VolumeForbiddenError) as info:
        check_host_path(path, docker_socket=NO_SOCKET)
    assert info.value.code == "VOLUME_FORBIDDEN"


@pytest.mark.parametrize("path", ["/var", "/var/lib", "/usr/.."])
def test_check_host_path_refuses_a_folder_that_contains_a_forbidden_path(path: str) -> None:
    with pytest.raises(VolumeForbiddenError, match="protected"):
        check_host_path(path, docker_socket=NO_SOCKET)


def test_check_host_path_refuses_a_symlink_into_etc(short_dir: Path) -> None:
    (short_dir / "innocent").symlink_to("/etc")
    with pytest.raises(VolumeForbiddenError):
        check_host_path(str(short_dir / "innocent"), docker_socket=NO_SOCKET)


def test_check_host_path_refuses_a_symlink_below_a_harmless_folder_into_etc(
    short_dir: Path,
) -> None:
    (short_dir / "project").mkdir()
    (short_dir / "project" / "config").symlink_to("/etc")
    with pytest.raises(VolumeForbiddenError):
        check_host_path(str(short_dir / "project" / "config"), docker_socket=NO_SOCKET)


def test_check_host_path_refuses_dot_dot_into_etc(short_dir: Path) -> None:
    (short_dir / "project").mkdir()
    escape = str(short_dir / "project") + "/.." * 10 + "/etc"
    with pytest.raises(VolumeForbiddenError):
        check_host_path(escape, docker_socket=NO_SOCKET)


def test_check_host_path_refuses_the_docker_socket_itself(docker_socket: Path) -> None:
    with pytest.raises(VolumeForbiddenError):
        check_host_path(str(docker_socket), docker_socket=str(docker_socket))


def test_check_host_path_refuses_the_docker_socket_through_a_symlink(
    short_dir: Path, docker_socket: Path
) -> None:
    (short_dir / "harmless.txt").symlink_to(docker_socket)
    with pytest.raises(VolumeForbiddenError):
        check_host_path(str(short_dir / "harmless.txt"), docker_socket=str(docker_socket))


def test_check_host_path_refuses_the_folder_holding_the_docker_socket(docker_socket: Path) -> None:
    with pytest.raises(VolumeForbiddenError, match="protected"):
        check_host_path(str(docker_socket.parent), docker_socket=str(docker_socket))


def test_check_host_path_refuses_a_symlink_to_the_folder_holding_the_docker_socket(
    short_dir: Path, docker_socket: Path
) -> None:
    (short_dir / "project").symlink_to(docker_socket.parent)
    with pytest.raises(VolumeForbiddenError, match="protected"):
        check_host_path(str(short_dir / "project"), docker_socket=str(docker_socket))


def test_check_host_path_refuses_a_folder_the_docker_socket_path_links_into(
    short_dir: Path, docker_socket: Path
) -> None:
    # DOCKER_SOCKET names a symlink (as /var/run -> /run does); its target folder is refused.
    (short_dir / "var-run").symlink_to(docker_socket.parent)
    setting = str(short_dir / "var-run" / "docker.sock")
    with pytest.raises(VolumeForbiddenError, match="protected"):
        check_host_path(str(docker_socket.parent), docker_socket=setting)


def test_check_host_path_refuses_a_device_file(short_dir: Path) -> None:
    # Outside /dev, so that the file type is what refuses it, not the path.
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(short_dir / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    with pytest.raises(VolumeForbiddenError, match="device"):
        check_host_path(str(short_dir / "null"), docker_socket=NO_SOCKET)


def test_check_host_path_refuses_a_protected_path_before_looking_for_it() -> None:
    # The answer must not tell whether a protected path exists on the host.
    with pytest.raises(VolumeForbiddenError):
        check_host_path("/etc/no-such-file-here", docker_socket=NO_SOCKET)


def test_check_host_path_refuses_a_symlink_to_a_device_file(short_dir: Path) -> None:
    (short_dir / "null").symlink_to("/dev/null")
    with pytest.raises(VolumeForbiddenError):
        check_host_path(str(short_dir / "null"), docker_socket=NO_SOCKET)


def test_check_host_path_refuses_a_fifo(short_dir: Path) -> None:
    os.mkfifo(short_dir / "pipe")
    with pytest.raises(VolumeForbiddenError, match="device"):
        check_host_path(str(short_dir / "pipe"), docker_socket=NO_SOCKET)


def test_check_host_path_refuses_any_unix_socket(short_dir: Path) -> None:
    path = short_dir / "other.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(VolumeForbiddenError, match="socket"):
            check_host_path(str(path), docker_socket=NO_SOCKET)


def test_check_host_path_accepts_a_path_inside_an_allowed_root(short_dir: Path) -> None:
    inside = short_dir / "allowed" / "project"
    inside.mkdir(parents=True)
    result = check_host_path(
        str(inside), docker_socket=NO_SOCKET, allowed_roots=[short_dir / "allowed"]
    )
    assert result == str(inside)


def test_check_host_path_accepts_the_allowed_root_itself(short_dir: Path) -> None:
    (short_dir / "allowed").mkdir()
    check_host_path(
        str(short_dir / "allowed"), docker_socket=NO_SOCKET, allowed_roots=[short_dir / "allowed"]
    )


def test_check_host_path_refuses_a_path_outside_every_allowed_root(short_dir: Path) -> None:
    (short_dir / "allowed").mkdir()
    (short_dir / "elsewhere").mkdir()
    with pytest.raises(VolumeForbiddenError, match="outside the allowed"):
        check_host_path(
            str(short_dir / "elsewhere"),
            docker_socket=NO_SOCKET,
            allowed_roots=[short_dir / "allowed"],
        )


def test_check_host_path_refuses_a_sibling_that_shares_the_allowed_roots_prefix(
    short_dir: Path,
) -> None:
    (short_dir / "allowed").mkdir()
    (short_dir / "allowed-not").mkdir()
    with pytest.raises(VolumeForbiddenError, match="outside the allowed"):
        check_host_path(
            str(short_dir / "allowed-not"),
            docker_socket=NO_SOCKET,
            allowed_roots=[str(short_dir / "allowed")],
        )


def test_check_host_path_refuses_a_symlink_inside_an_allowed_root_pointing_out(
    short_dir: Path,
) -> None:
    (short_dir / "allowed").mkdir()
    (short_dir / "elsewhere").mkdir()
    (short_dir / "allowed" / "escape").symlink_to(short_dir / "elsewhere")
    with pytest.raises(VolumeForbiddenError, match="outside the allowed"):
        check_host_path(
            str(short_dir / "allowed" / "escape"),
            docker_socket=NO_SOCKET,
            allowed_roots=[short_dir / "allowed"],
        )


def test_check_host_path_refuses_dot_dot_out_of_an_allowed_root(short_dir: Path) -> None:
    (short_dir / "allowed").mkdir()
    (short_dir / "elsewhere").mkdir()
    with pytest.raises(VolumeForbiddenError, match="outside the allowed"):
        check_host_path(
            str(short_dir / "allowed" / ".." / "elsewhere"),
            docker_socket=NO_SOCKET,
            allowed_roots=[short_dir / "allowed"],
        )


def test_check_host_path_still_refuses_system_paths_under_an_allow_list() -> None:
    with pytest.raises(VolumeForbiddenError, match="protected"):
        check_host_path("/etc", docker_socket=NO_SOCKET, allowed_roots=["/"])


# -- container targets ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/",
        "/proc",
        "/proc/sys",
        "/sys",
        "/sys/fs/cgroup",
        "/dev",
        "/dev/shm",
        "/run/parallax",
        "/run/parallax/secrets",
        "/tmp",
        "/tmp/x",
        "/proc/",
        "/./proc",
        "/data/./../proc",
    ],
)
def test_check_target_refuses_reserved_paths_and_their_children(target: str) -> None:
    with pytest.raises(VolumeForbiddenError) as info:
        check_target(target, set())
    assert info.value.code == "VOLUME_FORBIDDEN"


@pytest.mark.parametrize("target", ["//proc", "//tmp", "//run/parallax", "//"])
def test_check_target_refuses_reserved_paths_written_with_a_double_slash(target: str) -> None:
    with pytest.raises(VolumeForbiddenError):
        check_target(target, set())


@pytest.mark.parametrize("target", ["/data/../etc", "/data/..", "/a/../../b"])
def test_check_target_refuses_dot_dot(target: str) -> None:
    with pytest.raises(VolumeForbiddenError, match=r"\.\."):
        check_target(target, set())


def test_check_target_refuses_a_backslash() -> None:
    with pytest.raises(VolumeForbiddenError):
        check_target("/data\\..\\proc", set())


@pytest.mark.parametrize("target", ["/data", "/workspace/project", "/tmpdata", "/procfs", "/run"])
def test_check_target_accepts_ordinary_paths(target: str) -> None:
    assert check_target(target, set()) == target


def test_check_target_returns_the_normalised_path() -> None:
    assert check_target("/data/./sub/", set()) == "/data/sub"


def test_check_target_records_the_target_as_taken() -> None:
    taken: set[str] = set()
    check_target("/data", taken)
    assert taken == {"/data"}


def test_check_target_refuses_a_duplicate_target() -> None:
    taken = {"/data"}
    with pytest.raises(ValidationError, match="twice"):
        check_target("/data/", taken)


# -- volume mounts ----------------------------------------------------------------------------


def test_volume_mounts_turns_a_bind_request_into_a_bind_mount(short_dir: Path) -> None:
    (short_dir / "project").mkdir()
    (short_dir / "link").symlink_to(short_dir / "project")
    mounts = volume_mounts(
        [VolumeRequest(str(short_dir / "link"), "/workspace/p", read_only=True, is_bind=True)],
        docker_socket=NO_SOCKET,
        allowed_roots=(),
        volume_labels={},
    )
    assert mounts == [MountSpec("bind", "/workspace/p", str(short_dir / "project"), True)]


def test_volume_mounts_labels_a_named_volume() -> None:
    labels = {"parallax.managed": "true"}
    mounts = volume_mounts(
        [VolumeRequest("cache", "/cache", read_only=False, is_bind=False)],
        docker_socket=NO_SOCKET,
        allowed_roots=(),
        volume_labels=labels,
    )
    assert mounts == [MountSpec("volume", "/cache", "cache", False, volume_labels=labels)]


def test_volume_mounts_refuses_two_mounts_on_one_target() -> None:
    with pytest.raises(ValidationError, match="twice"):
        volume_mounts(
            [
                VolumeRequest("a", "/data", read_only=False, is_bind=False),
                VolumeRequest("b", "/data/", read_only=False, is_bind=False),
            ],
            docker_socket=NO_SOCKET,
            allowed_roots=(),
            volume_labels={},
        )


def test_volume_mounts_refuses_a_forbidden_host_path() -> None:
    with pytest.raises(VolumeForbiddenError):
        volume_mounts(
            [VolumeRequest("/etc", "/data", read_only=True, is_bind=True)],
            docker_socket=NO_SOCKET,
            allowed_roots=(),
            volume_labels={},
        )


def test_volume_mounts_applies_the_allow_list(short_dir: Path) -> None:
    (short_dir / "allowed").mkdir()
    (short_dir / "elsewhere").mkdir()
    with pytest.raises(VolumeForbiddenError, match="outside the allowed"):
        volume_mounts(
            [VolumeRequest(str(short_dir / "elsewhere"), "/data", read_only=True, is_bind=True)],
            docker_socket=NO_SOCKET,
            allowed_roots=[short_dir / "allowed"],
            volume_labels={},
        )


def test_volume_mounts_refuses_a_reserved_target_for_a_named_volume() -> None:
    with pytest.raises(VolumeForbiddenError):
        volume_mounts(
            [VolumeRequest("cache", "/run/parallax", read_only=False, is_bind=False)],
            docker_socket=NO_SOCKET,
            allowed_roots=(),
            volume_labels={},
        )


# -- runtime tmpfs ----------------------------------------------------------------------------

PRIVATE = (AGENT_RUN_DIR, AGENT_HOME, AGENT_WORKSPACE)


def _tmpfs(user: str | None, allow_root: bool = False) -> dict[str, str]:
    return runtime_tmpfs(plan_user(user, allow_root=allow_root), "64m")


def test_runtime_tmpfs_covers_scratch_home_workspace_and_the_runtime_dir() -> None:
    assert set(_tmpfs("1000:1000")) == {"/tmp", *PRIVATE}


def test_runtime_tmpfs_keeps_tmp_world_writable_and_sticky() -> None:
    assert _tmpfs("1000:1000")["/tmp"] == "rw,nosuid,nodev,size=64m,mode=1777"


def test_runtime_tmpfs_gives_private_dirs_to_a_numeric_user() -> None:
    for path in PRIVATE:
        assert _tmpfs("1000:1000")[path] == "rw,nosuid,nodev,size=64m,uid=1000,gid=1000,mode=0700"


@pytest.mark.parametrize("user", [None, "", "root", "0", "0:0", "root:root", "0:1000"])
def test_runtime_tmpfs_gives_private_dirs_to_the_unprivileged_user_of_a_root_image(
    user: str | None,
) -> None:
    for path in PRIVATE:
        assert _tmpfs(user)[path] == "rw,nosuid,nodev,size=64m,uid=65532,gid=65532,mode=0700"


@pytest.mark.parametrize("user", [None, "", "root", "0", "0:0"])
def test_runtime_tmpfs_gives_private_dirs_to_root_when_root_is_allowed(user: str | None) -> None:
    for path in PRIVATE:
        assert _tmpfs(user, allow_root=True)[path] == (
            "rw,nosuid,nodev,size=64m,uid=0,gid=0,mode=0700"
        )


def test_runtime_tmpfs_replaces_group_zero() -> None:
    assert "uid=1234,gid=65532,mode=0700" in _tmpfs("1234:0")[AGENT_HOME]


@pytest.mark.parametrize("user", ["node", "agent:agent"])
def test_runtime_tmpfs_is_planned_open_for_a_user_name(user: str) -> None:
    # Who a name is, only the image's /etc/passwd tells (read after create, which then makes
    # the container again with the tmpfs owned by the real ids: runtime/unprivileged.py).
    for path in PRIVATE:
        assert _tmpfs(user)[path] == "rw,nosuid,nodev,size=64m,mode=1777"


def test_runtime_tmpfs_guesses_the_project_user() -> None:
    assert "uid=1000,gid=1000,mode=0700" in _tmpfs("agent")[AGENT_HOME]


def test_runtime_tmpfs_never_allows_setuid_or_devices() -> None:
    for options in _tmpfs("1000:1000").values():
        assert {"nosuid", "nodev"} <= set(options.split(","))


# -- issue 4: internal network name, image references, runtimes, aliases ------------------------


def test_naming_the_internal_network_gives_the_internal_network() -> None:
    assert choose_network(f"{DEFAULT}-internal", DEFAULT) == NetworkChoice(
        f"{DEFAULT}-internal", internal=True
    )


@pytest.mark.parametrize(
    "ref",
    [
        "parallax/agent-base:latest",
        "busybox",
        "localhost:5000/team/agent:1.0",
        "registry.example.com/a/b@sha256:" + "0" * 64,
        "sha256:" + "a" * 64,
    ],
)
def test_check_image_ref_accepts_image_references(ref: str) -> None:
    assert check_image_ref(ref) == ref


@pytest.mark.parametrize(
    "ref", ["../x", "x/../../containers/y", "x?all=1", "x#y", "/x", "x:", "a b", "x//y", ""]
)
def test_check_image_ref_refuses_what_could_reach_another_endpoint(ref: str) -> None:
    with pytest.raises(ValidationError):
        check_image_ref(ref)


def test_choose_runtime_defaults_to_the_setting() -> None:
    assert choose_runtime(None, "runsc", ()) == "runsc"
    assert choose_runtime(None, None, ("runc",)) is None


def test_choose_runtime_allows_a_listed_runtime() -> None:
    assert choose_runtime("runc", "runsc", ("runc",)) == "runc"


def test_choose_runtime_refuses_one_not_listed() -> None:
    with pytest.raises(RuntimeForbiddenError):
        choose_runtime("runc", "runsc", ())


def test_check_runtime_available_refuses_one_the_engine_lacks() -> None:
    with pytest.raises(RuntimeUnavailableError):
        check_runtime_available("runsc", ("runc", "io.containerd.runc.v2"))


def test_check_runtime_available_accepts_when_the_engine_does_not_say() -> None:
    check_runtime_available("runsc", ())


def test_check_host_path_refuses_a_file_with_other_hard_links(short_dir: Path) -> None:
    (short_dir / "a").write_text("x")
    os.link(short_dir / "a", short_dir / "b")
    with pytest.raises(VolumeForbiddenError, match="hard links"):
        check_host_path(str(short_dir / "b"), docker_socket=NO_SOCKET)


def test_check_host_path_refuses_the_protected_paths_it_is_given(short_dir: Path) -> None:
    (short_dir / "secrets").mkdir()
    with pytest.raises(VolumeForbiddenError):
        check_host_path(str(short_dir), docker_socket=NO_SOCKET, protected=[short_dir / "secrets"])


def test_check_host_path_refuses_an_unresolvable_path() -> None:
    if os.geteuid() == 0 and os.access("/proc/1/root", os.R_OK):
        pytest.skip("/proc/1/root is resolvable here")
    with pytest.raises(VolumeForbiddenError):
        check_host_path("/proc/1/root/srv", docker_socket=NO_SOCKET)
