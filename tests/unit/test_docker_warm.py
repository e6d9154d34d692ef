"""Warm start mechanics that need no engine (backends/docker/warm.py): the held container's
wrapper run by a real shell on FIFOs, its spec, the claim directory and the FIFO helpers."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
from pathlib import Path

import pytest

from parallax_docker.backends.base import ContainerSpec, HealthProbe, ImageInfo, MountSpec
from parallax_docker.backends.docker.warm import (
    GO_NAME,
    HEALTH_WRAPPER,
    MARKER_NAME,
    UP_NAME,
    create_marker,
    held_spec,
    image_argv,
    make_claim_dir,
    open_fifo,
    read_line,
    slot_key,
    wait_script,
)
from parallax_docker.errors import HealthCheckFailedError, ValidationError


def _image(**fields: object) -> ImageInfo:
    base: dict[str, object] = {
        "id": "sha256:" + "2" * 64,
        "tags": ("example/app:1",),
        "user": "1000",
        "healthcheck": ("CMD", "/bin/check"),
        "labels": {},
        "size": 1,
        "created": None,
        "entrypoint": ("/bin/entry",),
        "cmd": ("--serve",),
        "health_interval_s": 30.0,
        "health_timeout_s": 3.0,
        "health_retries": 2,
        "health_start_period_s": 1.0,
    }
    base.update(fields)
    return ImageInfo(**base)  # type: ignore[arg-type]


def _spec(**fields: object) -> ContainerSpec:
    base: dict[str, object] = {
        "name": "parallax-pool-abc",
        "image": "example/app:1",
        "labels": {"parallax.pool": "true"},
        "network": "parallax-agents",
        "aliases": (),
        "memory_bytes": 1 << 28,
        "nano_cpus": 10**9,
        "pids_limit": 64,
        "mounts": (MountSpec("tmpfs", "/tmp"),),
    }
    base.update(fields)
    return ContainerSpec(**base)  # type: ignore[arg-type]


# -- the held container -------------------------------------------------------------------------


def test_slot_keys_are_prefixed_and_only_letters_and_digits() -> None:
    assert slot_key("a1b2") == "pool-a1b2"
    for bad in ("", "../x", "a b", "a/b"):
        with pytest.raises(ValidationError):
            slot_key(bad)


def test_image_argv_combines_entrypoint_and_command_as_docker_does() -> None:
    image = _image()
    assert image_argv(_spec(), image) == ("/bin/entry", "--serve")
    assert image_argv(_spec(command=("run",)), image) == ("/bin/entry", "run")
    # An entrypoint set on the container drops the image's CMD.
    assert image_argv(_spec(entrypoint=("/bin/own",)), image) == ("/bin/own",)
    with pytest.raises(ValidationError):
        image_argv(_spec(), _image(entrypoint=None, cmd=None))


def test_held_spec_wraps_the_image_behind_the_wait_script() -> None:
    mounts = (MountSpec("bind", "/run/parallax/claim", "/s/pool-abc/claim", read_only=True),)
    held = held_spec(_spec(), _image(), ("/bin/check",), mounts)
    assert held.entrypoint is not None and held.entrypoint[:2] == ("/bin/sh", "-c")
    assert held.command == ("/bin/entry", "--serve")
    assert held.mounts == (MountSpec("tmpfs", "/tmp"), *mounts)
    assert held.healthcheck == HealthProbe(
        argv=(*HEALTH_WRAPPER, "/bin/check"),
        interval_s=30.0,
        timeout_s=3.0,
        retries=2,
        start_period_s=1.0,
    )
    # An image that does not load the env file itself sources env.sh first.
    assert ". /run/parallax/env.sh" in held.entrypoint[2]


def test_held_spec_keeps_a_spec_without_any_check_unchecked() -> None:
    held = held_spec(_spec(), _image(healthcheck=None), None, ())
    assert held.healthcheck is None


def test_held_spec_wraps_a_healthcheck_the_spec_already_has() -> None:
    own = HealthProbe(("/bin/own-check",), 5.0, 1.0, 1, 0.0)
    held = held_spec(_spec(healthcheck=own), _image(), ("/bin/check",), ())
    assert held.healthcheck is not None
    assert held.healthcheck.argv == (*HEALTH_WRAPPER, "/bin/own-check")


async def _run_wrapped(script: str, command: str) -> asyncio.subprocess.Process:
    """``script`` run by a real shell in front of ``/bin/sh -c command``, as in a container."""
    return await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", script, "sh", "/bin/sh", "-c", command, stdout=subprocess.PIPE
    )


def _fifos(folder: Path) -> None:
    folder.mkdir()
    os.mkfifo(folder / GO_NAME)
    os.mkfifo(folder / UP_NAME)


async def test_the_wait_script_holds_the_command_until_the_claim_then_announces(
    tmp_path: Path,
) -> None:
    claim = tmp_path / "claim"
    _fifos(claim)
    ready = tmp_path / "ready-flag"
    script = wait_script(("test", "-e", str(ready)), False, claim_dir=str(claim))
    up = open_fifo(claim / UP_NAME)
    go = open_fifo(claim / GO_NAME)
    shell = await _run_wrapped(script, f"echo ran; touch {ready}; exec sleep 30")
    try:
        assert shell.stdout is not None
        # Held: nothing runs, and the read below times out.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await shell.stdout.readline()
        create_marker(claim / MARKER_NAME)
        os.write(go, b"go\n")
        async with asyncio.timeout(10):
            assert await shell.stdout.readline() == b"ran\n"
        # The announcer ran the readiness check until it passed.
        assert await read_line(up, 10) == b"up"
    finally:
        shell.kill()
        await shell.wait()
        os.close(up)
        os.close(go)


async def test_a_restarted_container_finds_the_marker_and_starts_at_once(tmp_path: Path) -> None:
    claim = tmp_path / "claim"
    _fifos(claim)
    create_marker(claim / MARKER_NAME)
    env_sh = tmp_path / "env.sh"
    env_sh.write_text("export TOKEN='from-env-sh'\n")
    script = wait_script(None, True, claim_dir=str(claim), env_sh=str(env_sh))
    done = await _run_wrapped(script, 'echo "token=$TOKEN"')
    async with asyncio.timeout(10):
        out, _ = await done.communicate()
    assert out == b"token=from-env-sh\n"


# -- the claim directory and its FIFOs ----------------------------------------------------------


def test_the_claim_directory_of_a_known_uid_belongs_to_it(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give the directory to another uid")
    make_claim_dir(tmp_path / "claim", 1000)
    for name, mode in (("", 0o500), (GO_NAME, 0o400), (UP_NAME, 0o200)):
        info = os.lstat(tmp_path / "claim" / name)
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (1000, mode), name
    assert stat.S_ISFIFO(os.lstat(tmp_path / "claim" / GO_NAME).st_mode)


def test_the_claim_directory_of_an_unknown_uid_is_open_to_any(tmp_path: Path) -> None:
    make_claim_dir(tmp_path / "claim", None)
    modes = {
        name: stat.S_IMODE(os.lstat(tmp_path / "claim" / name).st_mode)
        for name in ("", GO_NAME, UP_NAME)
    }
    assert modes == {"": 0o755, GO_NAME: 0o644, UP_NAME: 0o622}


def test_a_claim_directory_that_is_not_fifos_is_refused(tmp_path: Path) -> None:
    (tmp_path / "up").write_text("not a fifo")
    with pytest.raises(HealthCheckFailedError):
        open_fifo(tmp_path / "up")


async def test_read_line_gives_up_after_its_timeout(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "up")
    fd = open_fifo(tmp_path / "up")
    try:
        assert await read_line(fd, 0.05) is None
        os.write(fd, b"up\nmore\n")
        assert await read_line(fd, 1) == b"up"
    finally:
        os.close(fd)
