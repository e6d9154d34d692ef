"""The host path deny-list and the read-write allow-list (host_paths.py), decided by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from parallax_docker.errors import VolumeForbiddenError
from parallax_docker.host_paths import (
    CREDENTIAL_NAMES,
    SYSTEM_TREES,
    check_host_path,
    protected_reason,
    system_homes,
)

HOMES = ["/home/alice", "/srv/users/bob"]
NO_SOCKET = "/nonexistent/docker.sock"


def reason(path: str) -> str | None:
    return protected_reason(path, HOMES, [NO_SOCKET])


@pytest.mark.parametrize("tree", SYSTEM_TREES)
def test_each_system_tree_is_refused_itself_below_and_above(tree: str) -> None:
    assert reason(tree) is not None
    if tree != "/var":
        assert reason(tree + "/anything/deeper") is not None
    assert reason("/") is not None


@pytest.mark.parametrize(
    "path",
    [
        "/usr/local/bin",
        "/lib/x86_64-linux-gnu",
        "/opt/tool/bin",
        "/var/lib/dpkg",
        "/var/spool/cron",
        "/var/log/auth.log",
        "/etc/sudoers.d",
        "/boot/grub",
        "/root/.bashrc",
        "/run/user/1000",
        "/var/run/docker.sock",
        "/var/lib/docker/volumes",
    ],
)
def test_what_the_host_runs_or_reads_configuration_from_is_refused(path: str) -> None:
    assert reason(path) is not None


@pytest.mark.parametrize("path", ["/", "/tmp", "/var/tmp", "/home", "/mnt", "/media", "/srv"])
def test_shared_folders_are_refused_as_a_whole(path: str) -> None:
    assert reason(path) is not None


@pytest.mark.parametrize(
    "path",
    [
        "/tmp/project",
        "/var/tmp/build",
        "/mnt/data/x",
        "/media/usb/photos",
        "/srv/site",
        "/work/repo",
    ],
)
def test_their_children_are_fine(path: str) -> None:
    assert reason(path) is None


@pytest.mark.parametrize(
    "path",
    [
        "/tmp/.X11-unix",
        "/tmp/.ICE-unix/12",
        "/tmp/ssh-abc123",
        "/tmp/tmux-1000",
        "/tmp/systemd-private-xyz-foo",
        "/tmp/krb5cc_1000",
        "/var/tmp/systemd-private-1",
    ],
)
def test_other_users_sockets_in_scratch_folders_are_refused(path: str) -> None:
    assert reason(path) is not None


@pytest.mark.parametrize("name", sorted(CREDENTIAL_NAMES))
def test_credential_folders_are_refused_wherever_they_are(name: str) -> None:
    assert reason(f"/work/backup/{name}") is not None
    assert reason(f"/work/backup/{name}/inner") is not None


@pytest.mark.parametrize(
    "path",
    [
        "/home/alice",
        "/srv/users",
        "/srv/users/bob",
        "/home/alice/.config",
        "/home/alice/.config/gh",
        "/home/alice/.local/bin",
        "/home/alice/.bashrc",
        "/home/alice/.cargo",
        "/home/alice/bin",
        "/srv/users/bob/.profile",
    ],
)
def test_a_home_folder_and_its_private_entries_are_refused(path: str) -> None:
    assert reason(path) is not None


@pytest.mark.parametrize(
    "path", ["/home/alice/code/project", "/home/alice/binaries", "/srv/users/bob/work"]
)
def test_project_folders_inside_a_home_are_fine(path: str) -> None:
    assert reason(path) is None


def test_a_service_users_home_of_slash_does_not_make_everything_a_home() -> None:
    assert "/" not in system_homes()
    assert protected_reason("/work/x", ["/"], []) is None


def test_the_services_own_paths_are_refused_with_their_parents() -> None:
    assert protected_reason("/work/state", [], ["/work/state"]) is not None
    assert protected_reason("/work", [], ["/work/state"]) is not None
    assert protected_reason("/work/state/api-token", [], ["/work/state"]) is not None


def test_read_write_needs_the_allow_list(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    assert check_host_path(str(project), docker_socket=NO_SOCKET, read_only=True, homes=[])
    with pytest.raises(VolumeForbiddenError) as refused:
        check_host_path(str(project), docker_socket=NO_SOCKET, read_only=False, homes=[])
    assert "PARALLAX_ALLOWED_HOST_PATHS" in refused.value.resolution
    allowed = check_host_path(
        str(project), docker_socket=NO_SOCKET, read_only=False, allowed_roots=[tmp_path], homes=[]
    )
    assert allowed == str(project)


def test_the_allow_list_never_opens_a_protected_path() -> None:
    with pytest.raises(VolumeForbiddenError, match="protected"):
        check_host_path(
            "/usr/local/bin",
            docker_socket=NO_SOCKET,
            read_only=False,
            allowed_roots=["/usr/local"],
            homes=[],
        )


def test_a_symlink_into_a_home_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home-of-carol"
    (home / ".ssh").mkdir(parents=True)
    (tmp_path / "link").symlink_to(home / ".ssh")
    with pytest.raises(VolumeForbiddenError):
        check_host_path(str(tmp_path / "link"), docker_socket=NO_SOCKET, homes=[str(home)])


def test_a_refusal_by_name_does_not_depend_on_existence() -> None:
    with pytest.raises(VolumeForbiddenError):
        check_host_path("/opt/not-there-at-all", docker_socket=NO_SOCKET, homes=[])
