"""The DockerDeployment on the real engine: the core Backend and every capability, directly.

No service runs here: each test drives the deployment the runtime is given, and checks the
outcome against the engine through the tests' own small client. Everything made carries the
session's label or name prefix and is removed at the end of its test.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import tarfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import pytest

from parallax_docker.backends.base import (
    ContainerEvent,
    ContainerSpec,
    ExecExit,
    ExecOutput,
    ExecSpec,
    ImageInfo,
    MountSpec,
)
from parallax_docker.backends.capabilities import BuildDone, BuildOutput, BuildStep, WarmClaim
from parallax_docker.backends.docker.deployment import DockerDeployment
from parallax_docker.backends.docker.secrets import ENV_FILE_TARGET, ENV_SH_TARGET
from parallax_docker.config import load_settings
from parallax_docker.errors import (
    AgentNotFoundError,
    AgentStateError,
    ConflictError,
    EngineError,
    NetworkForbiddenError,
    ValidationError,
    VolumeInUseError,
)
from parallax_docker.images.operations import list_images
from tests.integration.conftest import PREFIX, SESSION
from tests.support.engine import Engine
from tests.support.images import AGENT_IMAGE, BUSYBOX_IMAGE

pytestmark = pytest.mark.integration

LABELS = {"test-session": SESSION}
T = TypeVar("T")
MIB = 1024 * 1024


def _name(what: str) -> str:
    return f"{PREFIX}-{what}-{uuid.uuid4().hex[:6]}"


def _spec(name: str, **changes: object) -> ContainerSpec:
    spec = ContainerSpec(
        name=name,
        image=BUSYBOX_IMAGE,
        labels=LABELS,
        network="none",
        aliases=(),
        memory_bytes=64 * MIB,
        nano_cpus=250_000_000,
        pids_limit=64,
        command=("/bin/sh", "-c", "trap 'exit 0' TERM; echo started; while true; do sleep 1; done"),
        tmpfs={"/tmp": "rw,size=16m,mode=1777"},
        stop_timeout_s=2,
    )
    return replace(spec, **changes)  # type: ignore[arg-type]


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[DockerDeployment]:
    made = DockerDeployment("/var/run/docker.sock", secrets_dir=tmp_path / "secrets")
    yield made
    await made.close()


@pytest.fixture
def names(engine: Engine) -> Iterator[list[str]]:
    """Container names the test makes; each is removed at the end."""
    made: list[str] = []
    yield made
    for name in made:
        engine.remove_container(name)


async def _running(deployment: DockerDeployment, names: list[str], **changes: object) -> str:
    spec = _spec(_name("c"), **changes)
    names.append(spec.name)
    container_id = await deployment.backend.create(spec)
    await deployment.backend.start(container_id)
    return container_id


# -- engine and containers -------------------------------------------------------------------


async def test_ping_negotiates_the_api_version_and_reports_the_host(
    deployment: DockerDeployment,
) -> None:
    info = await deployment.backend.ping()
    assert info.api_version and info.memory_bytes > 0 and info.cpus > 0
    negotiated = await deployment.engine.client.api_version()
    assert negotiated == info.api_version or negotiated < info.api_version


async def test_a_container_goes_through_its_whole_life(
    deployment: DockerDeployment, engine: Engine, names: list[str]
) -> None:
    backend = deployment.backend
    spec = _spec(_name("life"))
    names.append(spec.name)
    container_id = await backend.create(spec)
    state = await backend.get(container_id)
    assert state is not None and state.status == "created" and state.name == spec.name
    assert (state.memory_bytes, state.nano_cpus, state.pids_limit) == (64 * MIB, 250_000_000, 64)

    await backend.start(container_id)
    await backend.start(container_id)  # already running: nothing happens
    state = await backend.get(container_id)
    assert state is not None and state.running and state.pid

    await backend.restart(container_id, 2)
    restarted = await backend.get(container_id)
    assert restarted is not None and restarted.running and restarted.started_at != state.started_at

    await backend.stop(container_id, 2)
    await backend.stop(container_id, 2)  # already stopped: nothing happens
    stopped = await backend.get(container_id)
    assert stopped is not None and not stopped.running and stopped.exit_code == 0

    await backend.start(container_id)
    await backend.kill(container_id)
    killed = await poll_async(
        lambda: backend.get(container_id), lambda s: s is not None and not s.running, 10
    )
    assert killed is not None and killed.exit_code == 137
    await backend.kill(container_id)  # not running: nothing happens

    listed = await backend.list({"test-session": SESSION})
    assert container_id in {s.id for s in listed}
    await backend.remove(container_id)
    await backend.remove(container_id)  # gone already: nothing happens
    assert await backend.get(container_id) is None
    assert engine.inspect(container_id) is None


async def test_verbs_on_a_missing_container_say_so(deployment: DockerDeployment) -> None:
    backend = deployment.backend
    missing = f"{PREFIX}-never-{uuid.uuid4().hex[:6]}"
    assert await backend.get(missing) is None
    with pytest.raises(AgentNotFoundError):
        await backend.start(missing)
    with pytest.raises(AgentNotFoundError):
        await backend.restart(missing, 1)
    with pytest.raises(AgentNotFoundError):
        await backend.exec(missing, ExecSpec(argv=("true",)), timeout_s=5)


async def test_create_of_a_taken_name_is_a_conflict(
    deployment: DockerDeployment, names: list[str]
) -> None:
    spec = _spec(_name("taken"))
    names.append(spec.name)
    await deployment.backend.create(spec)
    with pytest.raises(ConflictError):
        await deployment.backend.create(spec)


async def test_create_refuses_an_entrypoint_missing_from_the_image_and_removes_it(
    deployment: DockerDeployment, engine: Engine, names: list[str]
) -> None:
    spec = _spec(_name("noprog"), entrypoint=("/usr/bin/not-here",), command=("x",))
    names.append(spec.name)
    with pytest.raises(ValidationError, match="not-here"):
        await deployment.backend.create(spec)
    assert engine.inspect(spec.name) is None


async def test_create_finds_a_bare_entrypoint_on_the_image_path(
    deployment: DockerDeployment, engine: Engine, names: list[str]
) -> None:
    spec = _spec(_name("onpath"), entrypoint=("sleep",), command=("30",))
    names.append(spec.name)
    container_id = await deployment.backend.create(spec)
    assert engine.inspect(container_id) is not None
    missing = _spec(_name("offpath"), entrypoint=("no-such-tool",), command=())
    names.append(missing.name)
    with pytest.raises(ValidationError):
        await deployment.backend.create(missing)


# -- processes, logs, usage, events -----------------------------------------------------------


async def test_exec_feeds_stdin_and_reports_the_exit_code(
    deployment: DockerDeployment, names: list[str]
) -> None:
    container_id = await _running(deployment, names)
    result = await deployment.backend.exec(
        container_id,
        ExecSpec(
            argv=("/bin/sh", "-c", 'cat; echo "[$X]"; exit 3'), stdin=b"in-put\n", env={"X": "y"}
        ),
        timeout_s=10,
    )
    assert result.exit_code == 3
    assert result.output == b"in-put\n[y]\n"


async def test_stream_exec_yields_both_streams_then_the_exit(
    deployment: DockerDeployment, names: list[str]
) -> None:
    container_id = await _running(deployment, names)
    spec = ExecSpec(argv=("/bin/sh", "-c", "echo out; echo err >&2; wc -c"), stdin=b"x" * 200_000)
    items = [item async for item in deployment.backend.stream_exec(container_id, spec)]
    assert isinstance(items[-1], ExecExit) and items[-1].exit_code == 0
    chunks = [item for item in items if isinstance(item, ExecOutput)]
    stdout = b"".join(c.data for c in chunks if c.stream == "stdout")
    assert b"out\n" in stdout and b"200000" in stdout
    assert b"".join(c.data for c in chunks if c.stream == "stderr") == b"err\n"


async def test_exec_in_a_stopped_container_is_an_agent_state_error(
    deployment: DockerDeployment, names: list[str]
) -> None:
    container_id = await _running(deployment, names)
    await deployment.backend.stop(container_id, 1)
    with pytest.raises(AgentStateError):
        await deployment.backend.exec(container_id, ExecSpec(argv=("true",)), timeout_s=5)


async def test_logs_read_and_follow_the_output(
    deployment: DockerDeployment, names: list[str]
) -> None:
    command = ("/bin/sh", "-c", "trap 'exit 0' TERM; echo err >&2; echo one; echo two; sleep 600")
    container_id = await _running(deployment, names, command=command)
    backend = deployment.backend

    async def lines(tail: int | None = None, timestamps: bool = False) -> list[str]:
        return await backend.logs(container_id, tail=tail, since=None, timestamps=timestamps)

    every = await poll_async(lines, lambda found: len(found) == 3, 10)
    # Both streams, each in its order (the engine orders the two streams by arrival).
    assert sorted(every) == ["err", "one", "two"]
    assert [line for line in every if line != "err"] == ["one", "two"]
    assert await lines(tail=1) == every[-1:]
    stamped = await lines(tail=1, timestamps=True)
    assert stamped[0].endswith(f" {every[-1]}") and stamped[0][:4].isdigit()

    followed: list[str] = []
    stream = backend.stream_logs(container_id, tail=None, since=None, timestamps=False)
    async with asyncio.timeout(10):
        async for line in stream:
            followed.append(line)
            if len(followed) == 3:
                break
    await stream.aclose()  # type: ignore[attr-defined]
    assert followed == every


@pytest.mark.parametrize("cgroups", [True, False], ids=["cgroup-files", "engine-stats"])
async def test_usage_counts_the_containers_memory_and_processes(
    tmp_path: Path, names: list[str], cgroups: bool
) -> None:
    deployment = DockerDeployment(
        "/var/run/docker.sock",
        secrets_dir=tmp_path / "s",
        cgroup_root=Path("/sys/fs/cgroup") if cgroups else None,
    )
    try:
        container_id = await _running(deployment, names)
        state = await deployment.backend.get(container_id)
        assert state is not None
        sample = await deployment.backend.usage(state)
        assert sample.memory_limit == 64 * MIB
        assert 0 < sample.memory_usage < 64 * MIB
        assert sample.pids >= 2 and sample.cpu_total_ns > 0
        assert bool(sample.raw) is not cgroups  # the engine's answer is kept, the files' is not
    finally:
        await deployment.close()


async def test_watch_events_reports_the_labelled_containers_start_and_die(
    deployment: DockerDeployment, names: list[str]
) -> None:
    label = {"test-session": SESSION, "test-watch": uuid.uuid4().hex[:8]}
    seen: list[ContainerEvent] = []
    since_ns = time.time_ns()

    async def watch() -> None:
        async for event in deployment.backend.watch_events(label, since_ns=since_ns):
            seen.append(event)
            if event.action == "die":
                return

    watcher = asyncio.create_task(watch())
    container_id = await _running(deployment, names, labels=label)
    await deployment.backend.kill(container_id)
    await asyncio.wait_for(watcher, 15)
    actions = [e.action for e in seen if e.container_id == container_id]
    assert actions[:1] == ["create"] and "start" in actions and actions[-1] == "die"
    assert seen[-1].exit_code == 137 and seen[-1].labels.get("test-watch") == label["test-watch"]


# -- networks and volumes ----------------------------------------------------------------------


async def test_networks_are_ensured_counted_listed_and_removed(
    deployment: DockerDeployment, engine: Engine, names: list[str]
) -> None:
    backend = deployment.backend
    name = _name("net")
    labels = {"test-session": SESSION, "test-net": name}
    try:
        assert await backend.ensure_network(name, labels) == labels
        # Again: the network is there, its labels are read back.
        assert await backend.ensure_network(name, {"other": "x"}) == labels
        with pytest.raises(NetworkForbiddenError):
            await backend.ensure_network(name, labels, internal=True)
        await _running(deployment, names, network=name, aliases=("alias-one",))
        info = await backend.get_network(name)
        assert info is not None and info.containers == 1 and not info.internal
        assert [n.name for n in await backend.list_networks({"test-net": name})] == [name]
        with pytest.raises(ConflictError):
            await backend.remove_network(name)  # a container is still attached
        engine.remove_container(names[-1])
        await backend.remove_network(name)
        assert await backend.get_network(name) is None
        await backend.remove_network(name)  # gone already: nothing happens
    finally:
        engine.remove_network(name)


async def test_volumes_are_read_listed_and_refused_removal_while_in_use(
    deployment: DockerDeployment, engine: Engine, names: list[str]
) -> None:
    backend = deployment.backend
    name = _name("vol")
    engine.create_volume(name, {"test-session": SESSION, "test-vol": name})
    try:
        volume = await backend.get_volume(name)
        assert volume is not None and volume.labels["test-vol"] == name
        assert [v.name for v in await backend.list_volumes({"test-vol": name})] == [name]
        container_id = await _running(
            deployment, names, mounts=(MountSpec("volume", "/data", name),)
        )
        assert await backend.list_volumes({"test-vol": name}, unused_only=True) == []
        with pytest.raises(VolumeInUseError):
            await backend.remove_volume(name)
        await backend.remove(container_id)
        await backend.remove_volume(name)
        assert await backend.get_volume(name) is None
        await backend.remove_volume(name)  # gone already: nothing happens
    finally:
        engine.remove_volume(name)


# -- capabilities ---------------------------------------------------------------------------


async def test_a_terminal_runs_a_shell_and_reports_its_exit(
    deployment: DockerDeployment, names: list[str]
) -> None:
    container_id = await _running(deployment, names)
    terminal = await deployment.terminals.open_terminal(
        container_id, ExecSpec(argv=("/bin/sh",)), cols=80, rows=24
    )
    try:
        await terminal.write(b"echo typed-$((6*7))\n")
        screen = b""
        async with asyncio.timeout(10):
            while b"typed-42" not in screen:
                screen += await terminal.read()
        await terminal.resize(100, 30)
        assert await terminal.exit_code() is None
        await terminal.write(b"exit 5\n")
        async with asyncio.timeout(10):
            while await terminal.read():
                pass
        assert await poll_async(terminal.exit_code, lambda code: code == 5, 5) == 5
    finally:
        await terminal.close()


async def poll_async(
    fetch: Callable[[], Awaitable[T]], until: Callable[[T], bool], timeout_s: float
) -> T:
    """Await ``fetch`` until ``until`` holds for its value; fail with the last value."""
    deadline = time.monotonic() + timeout_s
    value = await fetch()
    while not until(value):
        assert time.monotonic() < deadline, value
        await asyncio.sleep(0.02)
        value = await fetch()
    return value


async def _image(deployment: DockerDeployment, ref: str) -> ImageInfo:
    image = await deployment.backend.get_image(ref)
    assert image is not None
    return image


async def test_secrets_reach_the_process_and_never_the_engines_api(
    deployment: DockerDeployment, engine: Engine, names: list[str]
) -> None:
    secret = f"sk-{uuid.uuid4().hex}"
    image = await _image(deployment, BUSYBOX_IMAGE)
    key = f"agent-{uuid.uuid4().hex[:8]}"
    command = ("/bin/sh", "-c", 'echo "token=$API_TOKEN"; sleep 600')
    delivered = deployment.secrets.deliver(
        key, {"API_TOKEN": secret}, image, image_ref=BUSYBOX_IMAGE, command=command, uid=1000
    )
    assert delivered is not None and delivered.entrypoint is not None
    spec = _spec(
        _name("secret"),
        entrypoint=delivered.entrypoint,
        command=delivered.command,
        mounts=delivered.mounts,
    )
    names.append(spec.name)
    container_id = await deployment.backend.create(spec)
    await deployment.backend.start(container_id)
    lines = await poll_async(
        lambda: deployment.backend.logs(container_id, tail=None, since=None, timestamps=False),
        lambda found: bool(found),
        10,
    )
    assert lines == [f"token={secret}"]
    code, listing = engine.exec(container_id, "/bin/cat", ENV_FILE_TARGET)
    assert code == 0 and f"API_TOKEN={secret}" in listing
    assert secret not in json.dumps(engine.inspect(container_id))
    deployment.secrets.remove(key)
    assert not (deployment.secrets.root / key).exists()


async def test_warm_start_holds_the_agent_until_a_claim_makes_it_the_agent(
    deployment: DockerDeployment, engine: Engine, names: list[str]
) -> None:
    backend, warm = deployment.backend, deployment.warm_start
    network = _name("warmnet")
    await backend.ensure_network(network, {"test-session": SESSION})
    image = await _image(deployment, AGENT_IMAGE)
    slot = uuid.uuid4().hex[:12]
    spec = _spec(_name("pool"), image=AGENT_IMAGE, command=None, network=network)
    names.append(spec.name)
    try:
        held = await warm.prepare(spec, image, ("/bin/test", "-f", "/tmp/ready"), slot)
        slot_dir = deployment.secrets.root / held.key
        assert (slot_dir / "env").read_bytes() == b"" and (slot_dir / "claim" / "go").exists()
        # Held: the image's command has not run.
        assert await backend.logs(held.container_id, tail=None, since=None, timestamps=False) == []
        secret = f"sk-{uuid.uuid4().hex}"
        agent_key = f"agent-{uuid.uuid4().hex[:8]}"
        claimed_name = _name("claimed")
        names.append(claimed_name)
        claim = WarmClaim(
            key=agent_key,
            name=claimed_name,
            network=network,
            aliases=("the-agent", claimed_name),
            memory_bytes=96 * MIB,
            nano_cpus=500_000_000,
            env={"API_TOKEN": secret},
        )
        assert await warm.claim(held, claim, timeout_s=10) is True
        state = await backend.get(held.container_id)
        assert state is not None and state.running and state.name == claimed_name
        assert (state.memory_bytes, state.nano_cpus) == (96 * MIB, 500_000_000)
        inspect = engine.inspect(held.container_id)
        assert inspect is not None
        endpoint = inspect["NetworkSettings"]["Networks"][network]
        assert {"the-agent", claimed_name} <= set(endpoint["Aliases"] or ())
        code, env_sh = engine.exec(held.container_id, "/bin/cat", ENV_SH_TARGET)
        assert code == 0 and secret in env_sh
        assert secret not in json.dumps(inspect)
        assert "agent-up" in await backend.logs(
            held.container_id, tail=None, since=None, timestamps=False
        )
        assert not slot_dir.exists() and (deployment.secrets.root / agent_key).is_dir()

        await warm.discard(held.container_id, held.slot, agent_key)
        assert engine.inspect(held.container_id) is None
        assert not (deployment.secrets.root / agent_key).exists()
    finally:
        engine.remove_network(network)


async def test_warm_start_refuses_limits_the_engine_would_not_apply(
    deployment: DockerDeployment, engine: Engine, names: list[str]
) -> None:
    image = await _image(deployment, AGENT_IMAGE)
    spec = _spec(_name("pool"), image=AGENT_IMAGE, command=None)
    names.append(spec.name)
    held = await deployment.warm_start.prepare(spec, image, None, uuid.uuid4().hex[:12])
    claim = WarmClaim(
        key=f"agent-{uuid.uuid4().hex[:8]}",
        name=_name("claimed"),
        network="none",
        aliases=(),
        memory_bytes=1024,  # below the engine's minimum: it refuses
        nano_cpus=500_000_000,
        env={},
    )
    with pytest.raises((ValidationError, EngineError)):
        await deployment.warm_start.claim(held, claim, timeout_s=2)
    await deployment.warm_start.discard(held.container_id, held.slot, claim.key)
    assert engine.inspect(held.container_id) is None
    assert list(deployment.secrets.root.iterdir()) == []


def _context(dockerfile: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue())


async def test_image_building_inspects_and_builds_a_tiny_image(
    deployment: DockerDeployment, engine: Engine
) -> None:
    images = deployment.images
    assert (await images.get_image(BUSYBOX_IMAGE)) is not None
    assert await images.get_image(f"{PREFIX}/never:latest") is None
    tag = f"{PREFIX}/tiny:latest"
    dockerfile = f"FROM {BUSYBOX_IMAGE}\nRUN echo built-in-step\nLABEL test-session={SESSION}\n"
    try:
        events = [
            event
            async for event in images.stream_build(
                _context(dockerfile),
                dockerfile="Dockerfile",
                tag=tag,
                build_args={},
                labels={"test-session": SESSION},
                no_cache=True,
            )
        ]
        steps = [e for e in events if isinstance(e, BuildStep)]
        assert [s.instruction for s in steps][:2] == [
            f"FROM {BUSYBOX_IMAGE}",
            "RUN echo built-in-step",
        ]
        assert [s.index for s in steps] == list(range(1, steps[0].total + 1))
        assert BuildOutput("built-in-step") in events
        built = await images.get_image(tag)
        assert built is not None and built.labels["test-session"] == SESSION
        assert events[-1] == BuildDone(built.id)
        failing = f"FROM {BUSYBOX_IMAGE}\nRUN exit 7\n"
        with pytest.raises(EngineError, match="exited with code 7"):
            async for _ in images.stream_build(
                _context(failing),
                dockerfile="Dockerfile",
                tag=tag,
                build_args={},
                labels={},
                no_cache=True,
            ):
                pass
    finally:
        engine.http.delete(f"/images/{tag}", params={"force": "1"})


async def test_image_building_imports_a_root_filesystem(
    deployment: DockerDeployment, engine: Engine
) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = b"hello from the rootfs\n"
        info = tarfile.TarInfo("etc/motd")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    body = buffer.getvalue()

    async def chunks() -> AsyncIterator[bytes]:
        for begin in range(0, len(body), 4096):
            yield body[begin : begin + 4096]

    ref = f"{PREFIX}/imported:latest"
    try:
        image_id = await deployment.images.import_rootfs(
            chunks(), ref, ('CMD ["/bin/none"]', f"LABEL test-session={SESSION}")
        )
        image = await deployment.images.get_image(ref)
        assert image is not None and image.id == image_id
        assert image.cmd == ("/bin/none",) and image.labels["test-session"] == SESSION
    finally:
        engine.http.delete(f"/images/{ref}", params={"force": "1"})


async def test_image_building_reports_a_pull_it_cannot_make(deployment: DockerDeployment) -> None:
    # A registry on a closed local port: the engine's only traffic is to 127.0.0.1.
    ref = "127.0.0.1:1/nothing:latest"
    with pytest.raises(EngineError) as raised:
        async for _ in deployment.images.stream_pull(ref):
            pass
    assert raised.value.message.startswith(f"cannot pull {ref}: ")
    assert "debootstrap" in raised.value.resolution


async def test_the_image_builder_gets_its_engine_from_the_factory(
    deployment: DockerDeployment,
) -> None:
    # images/ never imports the Docker package: list_images opens the platform the settings
    # name, and must see what the deployment sees.
    rows = await list_images(load_settings({}))
    assert rows
    for row in rows:
        image = await deployment.images.get_image(row.image)
        assert row.status == ("missing" if image is None else "built")
        assert row.image_id == (None if image is None else image.id)
