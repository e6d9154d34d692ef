"""Secret env files (backends/docker/secrets.py): format, modes, mounts, wrapping, clean-up."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from parallax_docker.backends.base import ImageInfo
from parallax_docker.backends.docker.secrets import (
    ENV_FILE_TARGET,
    ENV_SH_TARGET,
    SHELL_WRAPPER,
    SecretStore,
    encode_env,
    encode_env_sh,
    loads_env_itself,
)
from parallax_docker.errors import ConfigError, ValidationError

TRICKY = {
    "PLAIN": "value",
    "QUOTES": "it's \"quoted\" and 'single'",
    "NEWLINE": "line one\nline two",
    "SHELL": "$(touch /tmp/pwned) `id` ${HOME} \\ ; | &",
    "EQUALS": "a=b=c",
    "EMPTY": "",
}


def _image(
    *,
    labels: dict[str, str] | None = None,
    entrypoint: tuple[str, ...] | None = None,
    cmd: tuple[str, ...] | None = ("/bin/app", "--serve"),
    user: str | None = "agent",
) -> ImageInfo:
    return ImageInfo(
        id="sha256:" + "1" * 64,
        tags=("example/app:1",),
        user=user,
        healthcheck=None,
        labels=labels or {},
        size=1,
        created=None,
        entrypoint=entrypoint,
        cmd=cmd,
    )


PROJECT_IMAGE = _image(
    labels={"parallax.image.type": "claude"},
    entrypoint=("/usr/local/bin/parallax-entrypoint",),
    cmd=("/usr/local/bin/parallax-idle",),
)


@pytest.fixture
def store(tmp_path: Path) -> SecretStore:
    return SecretStore(tmp_path / "secrets")


# -- formats ------------------------------------------------------------------------------------


def test_env_file_is_nul_separated_records() -> None:
    assert encode_env({"A": "1", "B": "x\ny"}) == b"A=1\x00B=x\ny\x00"


def test_env_sh_round_trips_every_value_through_a_real_shell(tmp_path: Path) -> None:
    path = tmp_path / "env.sh"
    path.write_bytes(encode_env_sh(TRICKY))
    script = f". {path} && " + " && ".join(f"printf '%s\\0' \"${key}\"" for key in TRICKY)
    out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, check=True, env={})
    assert out.stdout.split(b"\x00")[:-1] == [v.encode() for v in TRICKY.values()]
    assert not Path("/tmp/pwned").exists()


# -- which images load the file themselves ------------------------------------------------------


def test_project_images_load_the_env_file_themselves() -> None:
    assert loads_env_itself(PROJECT_IMAGE)


def test_an_image_with_the_label_but_another_entrypoint_is_wrapped() -> None:
    image = _image(labels={"parallax.image.type": "base"}, entrypoint=("/bin/other",))
    assert not loads_env_itself(image)


def test_an_image_without_the_label_is_wrapped() -> None:
    assert not loads_env_itself(_image(entrypoint=("/usr/local/bin/parallax-entrypoint",)))


# -- delivery -----------------------------------------------------------------------------------


def test_nothing_is_written_without_env(store: SecretStore) -> None:
    delivery = store.deliver("agent-1", {}, PROJECT_IMAGE, image_ref="x", command=None, uid=1000)
    assert delivery is None
    assert not store.root.exists()


def test_project_image_gets_the_env_file_mounted_read_only(store: SecretStore) -> None:
    delivery = store.deliver(
        "agent-1", {"K": "v"}, PROJECT_IMAGE, image_ref="x", command=None, uid=1000
    )
    assert delivery is not None
    assert delivery.entrypoint is None and delivery.command is None
    [mount] = delivery.mounts
    assert (mount.kind, mount.target, mount.read_only) == ("bind", ENV_FILE_TARGET, True)
    assert Path(mount.source).read_bytes() == b"K=v\x00"


def test_custom_image_gets_env_sh_and_a_wrapped_command(store: SecretStore) -> None:
    image = _image(entrypoint=("/bin/entry",), cmd=("--default",))
    delivery = store.deliver("agent-2", {"K": "v"}, image, image_ref="x", command=None, uid=1000)
    assert delivery is not None
    assert {m.target for m in delivery.mounts} == {ENV_FILE_TARGET, ENV_SH_TARGET}
    assert delivery.entrypoint == SHELL_WRAPPER
    # The image's ENTRYPOINT, then its CMD: what Docker would have run.
    assert delivery.command == ("/bin/entry", "--default")


def test_a_request_command_replaces_the_image_cmd_after_its_entrypoint(store: SecretStore) -> None:
    image = _image(entrypoint=("/bin/entry",), cmd=("--default",))
    delivery = store.deliver(
        "agent-3", {"K": "v"}, image, image_ref="x", command=("run", "it"), uid=1000
    )
    assert delivery is not None and delivery.command == ("/bin/entry", "run", "it")


def test_an_image_with_no_command_at_all_is_refused(store: SecretStore) -> None:
    image = _image(entrypoint=None, cmd=None)
    with pytest.raises(ValidationError):
        store.deliver("agent-4", {"K": "v"}, image, image_ref="x", command=None, uid=1000)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_as_root_the_file_is_0400_and_owned_by_the_image_user(store: SecretStore) -> None:
    delivery = store.deliver(
        "agent-5", {"K": "v"}, PROJECT_IMAGE, image_ref="x", command=None, uid=1000
    )
    assert delivery is not None
    info = os.stat(delivery.mounts[0].source)
    assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o400, 1000)


def test_directories_are_0700(store: SecretStore) -> None:
    store.deliver("agent-6", {"K": "v"}, PROJECT_IMAGE, image_ref="x", command=None, uid=None)
    assert stat.S_IMODE(os.stat(store.root).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store.root / "agent-6").st_mode) == 0o700


def test_with_an_unknown_uid_the_file_is_world_readable_inside_the_private_dir(
    store: SecretStore,
) -> None:
    delivery = store.deliver(
        "agent-7", {"K": "v"}, PROJECT_IMAGE, image_ref="x", command=None, uid=None
    )
    assert delivery is not None
    assert stat.S_IMODE(os.stat(delivery.mounts[0].source).st_mode) == 0o444


def test_a_loose_existing_root_is_tightened(tmp_path: Path) -> None:
    root = tmp_path / "loose"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    SecretStore(root).deliver(
        "agent-8", {"K": "v"}, PROJECT_IMAGE, image_ref="x", command=None, uid=None
    )
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700


def test_a_path_that_is_not_an_agent_id_is_refused(store: SecretStore) -> None:
    with pytest.raises(ValueError):
        store.key_dir("../escape")


# -- clean-up -----------------------------------------------------------------------------------


def test_remove_deletes_the_agent_files(store: SecretStore) -> None:
    store.deliver("agent-9", {"K": "v"}, PROJECT_IMAGE, image_ref="x", command=None, uid=None)
    store.remove("agent-9")
    assert not (store.root / "agent-9").exists()


def test_remove_of_an_unknown_agent_is_a_no_op(store: SecretStore) -> None:
    store.remove("agent-never")
    store.remove("../../etc")


def test_prune_removes_old_leftovers_and_keeps_live_agents(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = SecretStore(tmp_path / "s", grace_s=60, clock=lambda: now[0])
    for agent_id in ("live", "gone", "fresh"):
        store.deliver(agent_id, {"K": "v"}, PROJECT_IMAGE, image_ref="x", command=None, uid=None)
    for agent_id in ("live", "gone"):
        os.utime(store.root / agent_id, (now[0] - 3600, now[0] - 3600))
    os.utime(store.root / "fresh", (now[0] - 5, now[0] - 5))
    assert store.prune(keep=["live"]) == ["gone"]
    assert sorted(os.listdir(store.root)) == ["fresh", "live"]


def test_prune_without_a_directory_is_a_no_op(tmp_path: Path) -> None:
    assert SecretStore(tmp_path / "absent").prune(keep=[]) == []


def test_without_cap_chown_the_file_is_world_readable_inside_the_private_dir(
    tmp_path: Path,
) -> None:
    def no_chown(fd: int, uid: int, gid: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    store = SecretStore(tmp_path / "s", euid=lambda: 0, fchown=no_chown)
    delivery = store.deliver(
        "agent-c", {"K": "v"}, PROJECT_IMAGE, image_ref="x", command=None, uid=1000
    )
    assert delivery is not None
    assert stat.S_IMODE(os.stat(delivery.mounts[0].source).st_mode) == 0o444
    assert stat.S_IMODE(os.stat(store.root / "agent-c").st_mode) == 0o700


# -- files made ahead of their values (warm containers) -----------------------------------------


def test_reserve_makes_empty_files_with_the_delivered_modes(store: SecretStore) -> None:
    folder = store.reserve("pool-abc", None, shell=True)
    assert sorted(os.listdir(folder)) == ["env", "env.sh"]
    assert (folder / "env").read_bytes() == b""
    assert stat.S_IMODE(os.stat(folder / "env").st_mode) == 0o444
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert [m.target for m in store.mounts("pool-abc", shell=True)] == [
        ENV_FILE_TARGET,
        ENV_SH_TARGET,
    ]


def test_reserve_for_an_image_that_loads_the_file_itself_makes_no_env_sh(
    store: SecretStore,
) -> None:
    folder = store.reserve("pool-abd", None, shell=False)
    assert os.listdir(folder) == ["env"]
    assert [m.source for m in store.mounts("pool-abd", shell=False)] == [str(folder / "env")]


def test_fill_writes_in_place_keeping_the_inode_and_the_mode(store: SecretStore) -> None:
    folder = store.reserve("pool-abe", None, shell=True)
    inodes = {name: os.stat(folder / name).st_ino for name in ("env", "env.sh")}
    store.fill("pool-abe", TRICKY)
    assert (folder / "env").read_bytes() == encode_env(TRICKY)
    assert (folder / "env.sh").read_bytes() == encode_env_sh(TRICKY)
    for name, inode in inodes.items():
        info = os.stat(folder / name)
        assert (info.st_ino, stat.S_IMODE(info.st_mode)) == (inode, 0o444)


def test_fill_without_override_lends_the_owner_the_write_bit_for_the_write(
    tmp_path: Path,
) -> None:
    refused: list[str] = []

    def without_dac_override(path: str, flags: int, mode: int = 0o777) -> int:
        # What a service without CAP_DAC_OVERRIDE meets: its own read-only file refuses writes.
        if flags & os.O_WRONLY and not os.stat(path).st_mode & stat.S_IWUSR:
            refused.append(os.path.basename(path))
            raise PermissionError(13, "Permission denied")
        return os.open(path, flags, mode)

    store = SecretStore(tmp_path / "s", opener=without_dac_override)
    folder = store.reserve("pool-abf", None, shell=True)
    inode = os.stat(folder / "env").st_ino
    store.fill("pool-abf", {"K": "v"})
    assert refused == ["env", "env.sh"]
    info = os.stat(folder / "env")
    assert (info.st_ino, stat.S_IMODE(info.st_mode)) == (inode, 0o444)
    assert (folder / "env").read_bytes() == b"K=v\x00"


def test_move_gives_the_files_to_the_new_key_replacing_its_old_ones(store: SecretStore) -> None:
    store.deliver("agent-m", {"OLD": "1"}, PROJECT_IMAGE, image_ref="x", command=None, uid=None)
    folder = store.reserve("pool-abg", None, shell=False)
    inode = os.stat(folder / "env").st_ino
    moved = store.move("pool-abg", "agent-m")
    assert moved == store.root / "agent-m" and not folder.exists()
    assert os.stat(moved / "env").st_ino == inode and (moved / "env").read_bytes() == b""


def test_move_of_a_missing_key_is_a_config_error(store: SecretStore) -> None:
    store.reserve("pool-abh", None, shell=False)
    with pytest.raises(ConfigError):
        store.move("pool-none", "agent-x")
