"""Secret env values and credentials stay secret through a whole agent lifecycle.

One dedicated service (debug logging) runs a full lifecycle with unique secret values: a spawn
with env and credentials, reads, logs, metrics, a restart, a delete, a refused spawn and a failed
spawn. Then every place a secret could leak is searched: each response body, the service's log,
``docker inspect`` of the container (its Env, Mounts and the rest) and the event frames of
``/ws`` when that route exists. Inside the agent, the variables are set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.sync.client import connect

from tests.integration.conftest import PREFIX, SECRETS_DIR, agent_body, session_objects
from tests.support.engine import Engine
from tests.support.images import BUSYBOX_PATH, DOCKER
from tests.support.polling import poll
from tests.support.server import ServiceProcess

BASE_IMAGE = "parallax/agent-base:latest"
ENV_SECRET = f"env-secret-{uuid.uuid4().hex}"
KEY_SECRET = f"sk-ant-{uuid.uuid4().hex}"
CUSTOM_SECRET = f"custom-{uuid.uuid4().hex}"
SECRETS = (ENV_SECRET, KEY_SECRET, CUSTOM_SECRET)
# The agent writes its own environment where a test can read it: the busybox test image has
# no parallax entrypoint, so this is the service's /bin/sh wrapper at work.
DUMP_ENV = (
    "trap 'exit 0' TERM; env > /tmp/agent-env; echo agent-up; touch /tmp/ready; "
    "while true; do sleep 1; done"
)


def _secret_fields() -> dict[str, Any]:
    return {
        "env": {"APP_SECRET": ENV_SECRET, "MULTI": "two\nlines 'and' quotes"},
        "credentials": {"anthropicKey": KEY_SECRET, "custom": {"EXTRA_TOKEN": CUSTOM_SECRET}},
    }


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


@dataclass
class Lifecycle:
    """Everything the lifecycle produced that a secret could leak into."""

    service: ServiceProcess
    agent_id: str = ""
    container: str = ""
    bodies: list[str] = field(default_factory=list)
    inspects: list[dict[str, Any]] = field(default_factory=list)
    env_seen: str = ""
    env_after_restart: str = ""
    secrets_dir_while_running: bool = False
    secrets_dir_after_delete: bool = True
    failed_spawn_code: str = ""
    failed_secrets_left: list[str] = field(default_factory=list)
    frames: list[str] | None = None


class _EventTap:
    """Collects /ws frames in a thread; ``frames`` stays None if it could not connect (the test
    that reads them then fails)."""

    def __init__(self, url: str) -> None:
        self.frames: list[str] | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self, url: str) -> None:
        try:
            with connect(url, open_timeout=5, proxy=None) as ws:
                self.frames = []
                self._ready.set()
                while not self._stop.is_set():
                    try:
                        message = ws.recv(timeout=0.2)
                    except TimeoutError:
                        continue
                    self.frames.append(message if isinstance(message, str) else message.decode())
        except (InvalidStatus, WebSocketException, OSError):
            pass
        finally:
            self._ready.set()

    def close(self) -> list[str] | None:
        self._stop.set()
        self._thread.join(5)
        return self.frames


@pytest.fixture(scope="module")
def lifecycle(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lifecycle]:
    env = {
        "DOCKER_NETWORK": f"{PREFIX}-net",
        "LOG_LEVEL": "DEBUG",
        "PARALLAX_SECRETS_DIR": str(SECRETS_DIR),
        "PARALLAX_READY_TIMEOUT_S": "20",
        "PARALLAX_STOP_GRACE_S": "2",
    }
    proc = ServiceProcess(env, tmp_path_factory.mktemp("secrets") / "service.log").start()
    result = Lifecycle(service=proc)
    tap = _EventTap(proc.ws_url + "/ws")
    made: list[str] = []
    try:
        with httpx.Client(base_url=proc.url, timeout=60) as api:

            def record(response: httpx.Response) -> httpx.Response:
                result.bodies.append(
                    f"{response.request.url} {response.status_code} {response.text}"
                )
                return response

            spawned = record(
                api.post(
                    "/agents",
                    json=agent_body(command=["/bin/sh", "-c", DUMP_ENV], **_secret_fields()),
                )
            )
            assert spawned.status_code == 201, spawned.text
            handle = spawned.json()
            result.agent_id, result.container = handle["id"], handle["containerName"]
            made.append(result.container)
            result.secrets_dir_while_running = (SECRETS_DIR / result.agent_id).is_dir()
            result.inspects.append(engine.inspect(result.container) or {})
            result.env_seen = engine.exec(result.container, "cat", "/tmp/agent-env")[1]

            record(api.get(f"/agents/{result.agent_id}"))
            record(api.get("/agents"))
            record(api.get(f"/agents/{result.agent_id}/logs", params={"tail": 100}))
            with api.stream(
                "GET", f"/agents/{result.agent_id}/logs", params={"follow": "true"}, timeout=5
            ) as stream:
                first = next(stream.iter_lines(), "")
                result.bodies.append(first)
            record(api.get(f"/agents/{result.agent_id}/metrics"))
            record(api.get("/health"))
            restarted = record(api.post(f"/agents/{result.agent_id}/restart"))
            assert restarted.status_code == 200, restarted.text
            # /tmp is a tmpfs, new at each start: the file is the restarted process's.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                code, out = engine.exec(result.container, "cat", "/tmp/agent-env")
                if code == 0 and out:
                    result.env_after_restart = out
                    break
                time.sleep(0.1)
            result.inspects.append(engine.inspect(result.container) or {})
            deleted = record(api.delete(f"/agents/{result.agent_id}"))
            assert deleted.status_code == 204, deleted.text
            result.secrets_dir_after_delete = (SECRETS_DIR / result.agent_id).exists()

            # Refused before anything is made, and failed after the container was made.
            record(
                api.post(
                    "/agents", json=agent_body(resources={"memory": "lots"}, **_secret_fields())
                )
            )
            failed_id = f"agent-{uuid.uuid4().hex[:10]}"
            failed = record(
                api.post(
                    "/agents",
                    json=agent_body(
                        id=failed_id,
                        command=["/bin/sh", "-c", "echo starting; exit 3"],
                        **_secret_fields(),
                    ),
                )
            )
            made.append(f"parallax-{failed_id}")
            result.failed_spawn_code = failed.json().get("code", "")
            if (SECRETS_DIR / failed_id).exists():
                result.failed_secrets_left = os.listdir(SECRETS_DIR / failed_id)
            record(api.get(f"/agents/{failed_id}"))
        # Until the events of the delete have reached the tap.
        poll(
            lambda: list(tap.frames or ()),
            lambda frames: any("agent_stopped" in f and result.agent_id in f for f in frames),
            timeout_s=10,
        )
        result.frames = tap.close()
        yield result
    finally:
        tap.close()
        for name in made:
            engine.remove_container(name)
        proc.stop()


def test_no_response_body_holds_a_secret(lifecycle: Lifecycle) -> None:
    assert len(lifecycle.bodies) >= 10
    for body in lifecycle.bodies:
        assert _leaks(body) == [], body[:300]


def test_the_service_log_holds_no_secret(lifecycle: Lifecycle) -> None:
    log = lifecycle.service.logs()
    assert "agent spawned" in log, "the log must be the lifecycle's"
    assert _leaks(log) == []


def test_docker_inspect_holds_no_secret(lifecycle: Lifecycle) -> None:
    assert len(lifecycle.inspects) == 2  # after the spawn and after the restart
    for info in lifecycle.inspects:
        assert info["Name"] == "/" + lifecycle.container
        assert _leaks(json.dumps(info)) == []


def test_docker_inspect_env_has_not_even_the_secret_names(lifecycle: Lifecycle) -> None:
    for info in lifecycle.inspects:
        names = {entry.split("=", 1)[0] for entry in info["Config"]["Env"] or ()}
        assert names.isdisjoint({"APP_SECRET", "MULTI", "ANTHROPIC_API_KEY", "EXTRA_TOKEN"})


def test_the_secret_file_is_mounted_read_only_from_the_secrets_dir(lifecycle: Lifecycle) -> None:
    info = lifecycle.inspects[0]
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    env_mount = mounts["/run/parallax/env"]
    assert env_mount["RW"] is False
    assert env_mount["Source"] == str(SECRETS_DIR / lifecycle.agent_id / "env")
    assert mounts["/run/parallax/env.sh"]["RW"] is False


def test_event_frames_hold_no_secret(lifecycle: Lifecycle) -> None:
    assert lifecycle.frames, "the lifecycle must have produced events"
    for frame in lifecycle.frames:
        assert _leaks(frame) == [], frame[:300]


def test_the_agent_process_sees_its_env_and_credentials(lifecycle: Lifecycle) -> None:
    env = lifecycle.env_seen
    assert f"APP_SECRET={ENV_SECRET}" in env
    assert f"ANTHROPIC_API_KEY={KEY_SECRET}" in env
    assert f"EXTRA_TOKEN={CUSTOM_SECRET}" in env
    assert "MULTI=two\nlines 'and' quotes" in env


def test_the_agent_still_sees_its_env_after_a_restart(lifecycle: Lifecycle) -> None:
    assert f"APP_SECRET={ENV_SECRET}" in lifecycle.env_after_restart


def test_the_secret_files_live_as_long_as_the_agent(lifecycle: Lifecycle) -> None:
    assert lifecycle.secrets_dir_while_running
    assert not lifecycle.secrets_dir_after_delete


def test_a_failed_spawn_leaves_no_secret_file(lifecycle: Lifecycle) -> None:
    assert lifecycle.failed_spawn_code == "HEALTH_CHECK_FAILED"
    assert lifecycle.failed_secrets_left == []


# -- clean-up paths -----------------------------------------------------------------------------


def _wait_gone(path: Path, timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not path.exists():
            return True
        time.sleep(0.05)
    return False


def test_a_container_removed_behind_the_service_takes_its_secret_file(
    api: httpx.Client, engine: Engine
) -> None:
    response = api.post("/agents", json=agent_body(env={"K": "v"}))
    assert response.status_code == 201, response.text
    handle = response.json()
    folder = SECRETS_DIR / handle["id"]
    assert folder.is_dir()
    engine.remove_container(handle["containerName"])
    assert _wait_gone(folder)


def test_start_up_removes_secret_files_of_agents_that_no_longer_exist(
    start_service: Any, engine: Engine
) -> None:
    stale = SECRETS_DIR / f"agent-stale-{uuid.uuid4().hex[:8]}"
    stale.mkdir(parents=True, mode=0o700)
    (stale / "env").write_bytes(b"K=v\x00")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    start_service()
    assert _wait_gone(stale)


# -- the project images' entrypoint -------------------------------------------------------------


def test_a_project_image_loads_the_env_file_through_its_entrypoint(
    api: httpx.Client, engine: Engine
) -> None:
    image = engine.http.get(f"/images/{BASE_IMAGE}/json")
    if image.status_code == 404:
        pytest.skip(f"{BASE_IMAGE} is not built (parallax-docker images build base)")
    before = session_objects(engine)
    body = agent_body(
        image=BASE_IMAGE, resources={"memory": "256m", "cpu": 0.5}, env={"APP_SECRET": ENV_SECRET}
    )
    response = api.post("/agents", json=body)
    assert response.status_code == 201, response.text
    handle = response.json()
    try:
        info = engine.inspect(handle["containerName"])
        assert info is not None
        # Not wrapped: the image's own entrypoint reads /run/parallax/env.
        assert info["Config"]["Entrypoint"] == ["/usr/local/bin/parallax-entrypoint"]
        assert _leaks(json.dumps(info)) == []
        code, out = engine.exec(handle["containerName"], "parallax-exec", "env")
        assert code == 0
        assert f"APP_SECRET={ENV_SECRET}" in out
        # The agent process itself (the entrypoint's child) has it too.
        code, out = engine.exec(
            handle["containerName"],
            "sh",
            "-c",
            'tr "\\0" "\\n" < /proc/$(cat /run/parallax/agent.pid)/environ',
        )
        assert code == 0 and f"APP_SECRET={ENV_SECRET}" in out
    finally:
        engine.remove_container(handle["containerName"])
    assert session_objects(engine)[0] == before[0]


# -- images without a shell ---------------------------------------------------------------------


@pytest.fixture
def shell_less_image(tmp_path: Path) -> Iterator[str]:
    """A local image with busybox but no /bin/sh: it can run, but cannot source env.sh."""
    ref = f"{PREFIX}-nosh:latest"
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "tmp").mkdir()
    shutil.copy(BUSYBOX_PATH, root / "bin" / "busybox")
    for applet in ("sleep", "touch"):
        (root / "bin" / applet).symlink_to("busybox")
    archive = subprocess.run(["tar", "-C", str(root), "-c", "."], capture_output=True, check=True)
    subprocess.run(
        [DOCKER, "import", "--change", 'CMD ["/bin/sleep", "600"]', "-", ref],
        input=archive.stdout,
        capture_output=True,
        check=True,
    )
    yield ref
    subprocess.run([DOCKER, "image", "rm", "-f", ref], capture_output=True, check=False)


def test_an_image_without_a_shell_cannot_get_env_and_leaves_nothing(
    api: httpx.Client, engine: Engine, shell_less_image: str
) -> None:
    before = session_objects(engine)
    body = agent_body(image=shell_less_image, env={"APP_SECRET": ENV_SECRET})
    response = api.post("/agents", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert "/bin/sh" in response.json()["error"]
    assert ENV_SECRET not in response.text
    assert session_objects(engine) == before
    # Its secret file went with it.
    left = [p for p in SECRETS_DIR.glob("*/env") if ENV_SECRET.encode() in p.read_bytes()]
    assert left == []


def test_an_image_without_a_shell_runs_when_it_gets_no_env(
    api: httpx.Client, engine: Engine, shell_less_image: str
) -> None:
    response = api.post("/agents", json=agent_body(image=shell_less_image))
    assert response.status_code == 201, response.text
    engine.remove_container(response.json()["containerName"])
