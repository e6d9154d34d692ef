"""Secret env files (runtime/secrets.py): their format, modes, mounts, wrapping and clean-up."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from parallax_docker.backends.base import ImageInfo
from parallax_docker.config import load_settings
from parallax_docker.errors import ValidationError
from parallax_docker.models import SpawnRequest
from parallax_docker.runtime.secrets import (
    ENV_FILE_TARGET,
    ENV_SH_TARGET,
    SHELL_WRAPPER,
    SecretStore,
    encode_env,
    encode_env_sh,
    loads_env_itself,
)
from parallax_docker.runtime.service import AgentService
from parallax_docker.runtime.spec import container_spec, plan_agent
from tests.unit.fakes import FakeBackend, as_backend

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
        store.agent_dir("../escape")


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


# -- the container spec -------------------------------------------------------------------------


def test_the_container_spec_never_carries_secret_values_in_env(store: SecretStore) -> None:
    settings = load_settings(environ={})
    request = SpawnRequest.model_validate(
        {"name": "n", "type": "claude", "env": {"K": "top-secret-1"}, "id": "agent-s"}
    )
    plan = plan_agent(request, settings, host_memory=8 * 1024**3, host_cpus=4)
    delivery = store.deliver(
        "agent-s", plan.env, PROJECT_IMAGE, image_ref=plan.image, command=None, uid=1000
    )
    spec = container_spec(plan, PROJECT_IMAGE, settings, delivery)
    assert dict(spec.env) == {}
    assert "top-secret-1" not in repr(spec)
    assert any(m.target == ENV_FILE_TARGET and m.read_only for m in spec.mounts)


def test_a_nul_byte_in_an_env_value_is_refused_without_the_value() -> None:
    request = SpawnRequest.model_validate(
        {"name": "n", "type": "claude", "env": {"K": "sec\x00ret-77"}}
    )
    with pytest.raises(ValidationError) as refused:
        plan_agent(request, load_settings(environ={}), host_memory=8 * 1024**3, host_cpus=4)
    assert "ret-77" not in refused.value.message


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


# -- the service --------------------------------------------------------------------------------


async def _service(tmp_path: Path, fake: FakeBackend) -> AgentService:
    settings = load_settings(environ={"PARALLAX_SECRETS_DIR": str(tmp_path / "secrets")})
    service = AgentService(settings, as_backend(fake))
    service.engine_ready(await fake.ping())
    return service


async def test_a_spawn_without_a_shell_for_the_wrapper_is_refused_and_cleaned(
    tmp_path: Path,
) -> None:
    fake = FakeBackend()
    fake.images["example/app:1"] = _image(entrypoint=None, cmd=("/app",))
    fake.missing_paths.add("/bin/sh")
    service = await _service(tmp_path, fake)
    request = SpawnRequest.model_validate(
        {"name": "n", "type": "custom", "image": "example/app:1", "env": {"K": "v"}}
    )
    with pytest.raises(ValidationError, match="/bin/sh"):
        await service.spawn(request)
    assert fake.called("start") == []
    assert fake.containers == {}
    assert list((tmp_path / "secrets").iterdir()) == []


async def test_a_spawn_without_env_is_not_wrapped_and_needs_no_shell(tmp_path: Path) -> None:
    fake = FakeBackend()
    fake.images["example/app:1"] = _image(entrypoint=None, cmd=("/app",))
    fake.missing_paths.add("/bin/sh")
    service = await _service(tmp_path, fake)
    request = SpawnRequest.model_validate({"name": "n", "type": "custom", "image": "example/app:1"})
    await service.spawn(request)
    [spec] = fake.called("create")
    assert spec.entrypoint is None and fake.called("path_exists") == []


async def test_stop_removes_the_secret_files(tmp_path: Path) -> None:
    fake = FakeBackend()
    fake.images["example/app:1"] = PROJECT_IMAGE
    service = await _service(tmp_path, fake)
    request = SpawnRequest.model_validate(
        {"name": "n", "type": "custom", "image": "example/app:1", "env": {"K": "v"}, "id": "a-1"}
    )
    await service.spawn(request)
    assert (tmp_path / "secrets" / "a-1" / "env").exists()
    await service.stop("a-1")
    assert not (tmp_path / "secrets" / "a-1").exists()
