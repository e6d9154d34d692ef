"""The service in its own container (images/Dockerfile.service): built and run on the real engine
with the socket mounted, HOST=0.0.0.0 and a token, published on a 127.0.0.1 port."""

from __future__ import annotations

import asyncio
import gzip
import io
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from parallax_docker.client import Client, UnauthorizedError
from parallax_docker.config import Settings, load_settings
from parallax_docker.images.bootstrap import DebianSource
from parallax_docker.images.ca import choose_ca
from parallax_docker.images.context import CA_FILE
from parallax_docker.images.operations import image_engine
from tests.integration.conftest import PREFIX, SESSION, agent_body
from tests.support.engine import Engine
from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "parallax/service:test"
DOCKERFILE = "images/Dockerfile.service"
SOCKET = "/var/run/docker.sock"

pytestmark = pytest.mark.slow


def service_context(extra_ca: bytes | None) -> bytes:
    """What .dockerignore lets `docker build -f images/Dockerfile.service .` see."""
    files = [ROOT / "pyproject.toml", ROOT / "README.md", ROOT / "LICENSE", ROOT / DOCKERFILE]
    files += [ROOT / "images/entrypoint/build-ca.sh"]
    files += [
        p
        for p in sorted((ROOT / "src/parallax_docker").rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    ]
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w") as tar,
    ):
        info = tarfile.TarInfo("images/ca")
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
        for path in files:
            tar.add(path, arcname=path.relative_to(ROOT).as_posix(), recursive=False)
        if extra_ca is not None:
            info = tarfile.TarInfo(
                CA_FILE if CA_FILE.startswith("images/") else f"images/{CA_FILE}"
            )
            info.size = len(extra_ca)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(extra_ca))
    return buffer.getvalue()


async def build_service_image(settings: Settings) -> None:
    async with image_engine(settings) as engine:
        debian = await DebianSource(engine).ensure(lambda _: None, lambda _: None)
        context = service_context(choose_ca(None, None).data)
        async for _ in engine.stream_build(
            context,
            dockerfile=DOCKERFILE,
            tag=IMAGE,
            build_args={"BASE_IMAGE": debian},
            labels={"test-session": SESSION},
            no_cache=False,
            # The build's RUN steps reach the package registries through the host's network,
            # so the build does not depend on the engine's default bridge.
            network="host",
        ):
            pass


@pytest.fixture(scope="module")
def service_image(engine: Engine) -> str:
    asyncio.run(build_service_image(load_settings({})))
    return IMAGE


@pytest.fixture
def contained_service(
    engine: Engine, service_image: str, tmp_path: Path
) -> Iterator[tuple[str, str]]:
    """The service container, set up as compose.yaml does; yields its URL and token."""
    token = "tok-" + uuid.uuid4().hex
    port = free_port()
    # Secret env files are written by the service and mounted into agents by the engine from
    # the host: the directory has the same path on both sides.
    secrets = tmp_path / "secrets"
    name = f"{PREFIX}-service-{uuid.uuid4().hex[:6]}"
    network = f"{PREFIX}-svc-{uuid.uuid4().hex[:6]}"
    made = engine.http.post("/networks/create", json={"Name": network, "Driver": "bridge"})
    assert made.status_code == 201, made.text
    body = {
        "Image": service_image,
        "Env": [
            "HOST=0.0.0.0",
            "PORT=3200",
            f"PARALLAX_API_TOKEN={token}",
            f"DOCKER_NETWORK={PREFIX}-net",
            f"PARALLAX_SECRETS_DIR={secrets}",
        ],
        "Labels": {"test-session": SESSION},
        "ExposedPorts": {"3200/tcp": {}},
        "HostConfig": {
            "Mounts": [
                {"Type": "bind", "Source": SOCKET, "Target": SOCKET},
                {"Type": "bind", "Source": str(tmp_path), "Target": str(tmp_path)},
            ],
            "PortBindings": {"3200/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]},
            "ReadonlyRootfs": True,
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges:true"],
            "Tmpfs": {"/tmp": "size=64m", "/var/lib/parallax-docker": "size=64m"},
            "NetworkMode": network,
        },
    }
    created = engine.http.post("/containers/create", params={"name": name}, json=body)
    assert created.status_code == 201, created.text
    try:
        started = engine.http.post(f"/containers/{name}/start")
        assert started.status_code == 204, started.text
        url = f"http://127.0.0.1:{port}"
        wait_synced(url, token, lambda: container_logs(engine, name))
        yield url, token
    finally:
        engine.remove_container(name)
        engine.remove_network(network)


def container_logs(engine: Engine, name: str) -> str:
    raw = engine.http.get(f"/containers/{name}/logs", params={"stdout": 1, "stderr": 1}).content
    return raw.decode(errors="replace")[-3000:]


def wait_synced(url: str, token: str, logs: Callable[[], str], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    with Client(url, token=token, environ={}, timeout_s=3) as client:
        while time.monotonic() < deadline:
            try:
                health = client.health()
                if health.healthy and health.runtime.synced:
                    return
                last = health.message
            except Exception as exc:  # still starting: connection refused or reset
                last = type(exc).__name__
            time.sleep(0.3)
    raise AssertionError(f"the contained service never became healthy: {last}\n{logs()}")


def test_the_contained_service_answers_health_through_the_socket(
    contained_service: tuple[str, str],
) -> None:
    url, token = contained_service
    response = httpx.get(url + "/health", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    body = response.json()
    assert body["healthy"] is True
    assert body["runtime"]["engineVersion"]


def test_the_contained_service_refuses_a_client_without_the_token(
    contained_service: tuple[str, str],
) -> None:
    url, _ = contained_service
    with Client(url, environ={}) as client, pytest.raises(UnauthorizedError):
        client.list()


def test_the_contained_service_spawns_an_agent_that_sees_its_env(
    contained_service: tuple[str, str], engine: Engine
) -> None:
    url, token = contained_service
    command = ["/bin/sh", "-c", 'touch /tmp/ready; echo "greeting=$GREETING"; sleep 600']
    with Client(url, token=token, environ={}) as client:
        handle = client.spawn(**agent_body(command=command, env={"GREETING": "from-the-box"}))
        try:
            deadline = time.monotonic() + 10
            lines: list[str] = []
            while "greeting=from-the-box" not in lines and time.monotonic() < deadline:
                lines = client.logs(handle.id)
                time.sleep(0.1)
            assert "greeting=from-the-box" in lines
            client.stop(handle.id, timeout_ms=1000)
            assert engine.inspect(handle.container_name) is None
        finally:
            engine.remove_container(handle.container_name)
