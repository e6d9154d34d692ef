"""The stand-in model services as a container on the agents' network (built locally).

The image ``parallax/standin-models:<definition>`` is Debian's python3 on the project's
debootstrapped rootfs (``parallax/debian-rootfs:bookworm``, made by ``parallax-docker images
build base``) plus the ``standins`` package; its tag is a digest of the package's sources, so an
edit builds a new image. The container runs like an agent: read-only root, no capabilities,
no new privileges, an unprivileged user. Agents reach it by its network alias
(``http://standin:8080``); the test reaches its control API at the container's address.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from tests.support.images import DOCKER
from tests.support.standins.client import health

PACKAGE = Path(__file__).parent / "standins"
REPOSITORY = "parallax/standin-models"
ROOTFS = "parallax/debian-rootfs:bookworm"
PORT = 8080
ALIAS = "standin"

_DOCKERFILE = """\
FROM {rootfs}
RUN set -eux; apt-get update; \\
    apt-get install -y --no-install-recommends python3; \\
    apt-get clean; rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/*
COPY standins /opt/standins/standins
WORKDIR /opt/standins
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65534:65534
EXPOSE {port}
LABEL parallax.standin.definition={definition}
ENTRYPOINT ["python3", "-m", "standins", "--port", "{port}"]
"""


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.glob("*.py"))


def definition() -> str:
    digest = hashlib.sha256(_DOCKERFILE.encode())
    for path in _sources():
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def image_ref() -> str:
    return f"{REPOSITORY}:{definition()}"


def _exists(ref: str) -> bool:
    done = subprocess.run([DOCKER, "image", "inspect", ref], capture_output=True, check=False)
    return done.returncode == 0


def _context(rootfs: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        dockerfile = _DOCKERFILE.format(rootfs=rootfs, port=PORT, definition=definition())
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile.encode())
        tar.addfile(info, io.BytesIO(dockerfile.encode()))
        for path in _sources():
            data = path.read_bytes()
            info = tarfile.TarInfo(f"standins/{path.name}")
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def ensure_image(timeout_s: float = 1800) -> str:
    """The stand-in image for the current sources, built when missing."""
    ref = image_ref()
    if _exists(ref):
        return ref
    if not _exists(ROOTFS):
        # The project's builder bootstraps the Debian rootfs when no registry is reachable.
        subprocess.run(
            [
                sys.executable,
                "-m",
                "parallax_docker.cli.main",
                "images",
                "build",
                "base",
                "--plain",
            ],
            check=True,
            capture_output=True,
            timeout=timeout_s,
        )
    subprocess.run(
        [DOCKER, "build", "-q", "-t", ref, "-t", f"{REPOSITORY}:latest", "-"],
        input=_context(ROOTFS),
        check=True,
        capture_output=True,
        timeout=timeout_s,
    )
    return ref


class StandinContainer:
    """One stand-in server on ``network``, labelled for the test session's clean-up."""

    def __init__(self, name: str, network: str, labels: dict[str, str]) -> None:
        self.name = name
        self.network = network
        self.labels = labels
        self.address = ""

    @property
    def base_url(self) -> str:
        """Where the test reaches it (the container's address on the bridge)."""
        return f"http://{self.address}:{PORT}"

    @property
    def agent_url(self) -> str:
        """Where agents on the same network reach it."""
        return f"http://{ALIAS}:{PORT}"

    def start(self, timeout_s: float = 30) -> StandinContainer:
        ref = ensure_image()
        argv = [DOCKER, "run", "-d", "--name", self.name, "--network", self.network]
        argv += ["--network-alias", ALIAS, "--read-only", "--cap-drop", "ALL"]
        argv += ["--security-opt", "no-new-privileges", "--memory", "256m", "--pids-limit", "256"]
        for key, value in self.labels.items():
            argv += ["--label", f"{key}={value}"]
        subprocess.run([*argv, ref], check=True, capture_output=True)
        done = subprocess.run(
            [DOCKER, "inspect", "-f", "{{json .NetworkSettings.Networks}}", self.name],
            check=True,
            capture_output=True,
            text=True,
        )
        self.address = json.loads(done.stdout)[self.network]["IPAddress"]
        deadline = time.monotonic() + timeout_s
        while not health(self.base_url):
            if time.monotonic() > deadline:
                logs = subprocess.run(
                    [DOCKER, "logs", self.name], capture_output=True, text=True, check=False
                )
                raise RuntimeError(f"the stand-in did not come up: {logs.stderr[-2000:]}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        subprocess.run([DOCKER, "rm", "-f", self.name], capture_output=True, check=False)
