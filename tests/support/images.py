"""Tiny local test images built from Debian's busybox-static: nothing is ever pulled.

``parallax-test/busybox`` is a bare busybox rootfs with an ``agent`` user (uid 1000) and no
HEALTHCHECK. ``parallax-test/agent`` adds a HEALTHCHECK that passes once the agent's command has
written ``/tmp/ready``, and a default command that does so and then waits for SIGTERM.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

BUSYBOX_IMAGE = "parallax-test/busybox:latest"
AGENT_IMAGE = "parallax-test/agent:latest"
BUSYBOX_PATH = Path("/bin/busybox")
DOCKER = shutil.which("docker", path="/usr/bin:/usr/local/bin") or "docker"

_APPLETS = (
    "sh",
    "sleep",
    "cat",
    "echo",
    "touch",
    "test",
    "ls",
    "id",
    "env",
    "ping",
    "wget",
    "kill",
    "head",
    "tail",
    "true",
    "false",
    "mkdir",
    "rm",
    "nslookup",
    "ps",
    "yes",
    "dd",
    "printf",
    "seq",
    "grep",
    "stat",
    "hostname",
    "timeout",
    "httpd",
    "ip",
)

_AGENT_DOCKERFILE = """\
FROM {base}
LABEL parallax.test={definition}
HEALTHCHECK --interval=30s --timeout=3s --retries=1 CMD ["/bin/test", "-f", "/tmp/ready"]
CMD ["/bin/sh", "-c", "trap 'exit 0' TERM; touch /tmp/ready; echo agent-up; \
while true; do sleep 1; done"]
"""


# Bumped whenever the images' definition changes, so that a stale local copy is rebuilt.
_DEFINITION = hashlib.sha256(repr((_APPLETS, _AGENT_DOCKERFILE)).encode()).hexdigest()[:12]


def _image_current(ref: str, definition: str = _DEFINITION) -> bool:
    result = subprocess.run(
        [DOCKER, "image", "inspect", "--format", '{{index .Config.Labels "parallax.test"}}', ref],
        capture_output=True,
        check=False,
        text=True,
    )
    return result.returncode == 0 and result.stdout.strip() == definition


DEFAULT_PASSWD = b"root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000:agent:/home/agent:/bin/sh\n"
DEFAULT_GROUP = b"root:x:0:\nagent:x:1000:\n"


def _rootfs_tar(
    passwd: bytes = DEFAULT_PASSWD,
    group: bytes = DEFAULT_GROUP,
    applets: tuple[str, ...] = _APPLETS,
) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def add_dir(name: str, mode: int = 0o755, uid: int = 0) -> None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            info.uid = info.gid = uid
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))

        for folder in ("bin", "etc", "tmp", "home", "workspace", "run", "proc", "sys", "dev"):
            add_dir(folder, 0o1777 if folder == "tmp" else 0o755)
        add_dir("home/agent", 0o700, uid=1000)
        add_file("bin/busybox", BUSYBOX_PATH.read_bytes(), 0o755)
        for applet in applets:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            tar.addfile(info)
        add_file("etc/passwd", passwd)
        add_file("etc/group", group)
    return buffer.getvalue()


def user_image(
    user: str | None, passwd: bytes = DEFAULT_PASSWD, group: bytes = DEFAULT_GROUP
) -> str:
    """The busybox image with ``USER user`` (None: no USER at all) and these account files."""
    definition = hashlib.sha256(repr((_DEFINITION, user, passwd, group)).encode()).hexdigest()[:12]
    ref = f"parallax-test/user-{definition}:latest"
    if _image_current(ref, definition):
        return ref
    changes = ["WORKDIR /workspace", "ENV PATH=/bin", 'CMD ["/bin/sh"]']
    changes += [f"LABEL parallax.test={definition}"] + ([f"USER {user}"] if user else [])
    subprocess.run(
        [DOCKER, "import", *(arg for c in changes for arg in ("--change", c)), "-", ref],
        input=_rootfs_tar(passwd, group),
        check=True,
        capture_output=True,
    )
    return ref


def ensure_test_images(rebuild: bool = False) -> None:
    if rebuild or not _image_current(BUSYBOX_IMAGE):
        subprocess.run(
            [
                DOCKER,
                "import",
                "--change",
                "USER agent",
                "--change",
                "WORKDIR /workspace",
                "--change",
                "ENV PATH=/bin",
                "--change",
                'CMD ["/bin/sh"]',
                "--change",
                f"LABEL parallax.test={_DEFINITION}",
                "-",
                BUSYBOX_IMAGE,
            ],
            input=_rootfs_tar(),
            check=True,
            capture_output=True,
        )
    if rebuild or not _image_current(AGENT_IMAGE):
        with tempfile.TemporaryDirectory() as context:
            (Path(context) / "Dockerfile").write_text(
                _AGENT_DOCKERFILE.format(base=BUSYBOX_IMAGE, definition=_DEFINITION)
            )
            subprocess.run(
                [DOCKER, "build", "-q", "-t", AGENT_IMAGE, context], check=True, capture_output=True
            )


# What the file helper, workspace diffs and previews use in an agent, besides _APPLETS.
_TOOL_APPLETS = (
    "tar",
    "mv",
    "rmdir",
    "du",
    "cut",
    "readlink",
    "chmod",
    "ln",
    "mkfifo",
    "df",
    "find",
    "sha256sum",
    "wc",
    "[",
    "sort",
    "nc",
)


def tools_image() -> str:
    """The test agent image with the tools of a real one (tar, find, sha256sum, ...):
    read-only like every agent, ready once its command has written /tmp/ready."""
    applets = tuple(dict.fromkeys(_APPLETS + _TOOL_APPLETS))
    definition = hashlib.sha256(repr((_DEFINITION, applets)).encode()).hexdigest()[:12]
    ref = f"parallax-test/tools-{definition}:latest"
    if _image_current(ref, definition):
        return ref
    base = f"parallax-test/tools-base-{definition}:latest"
    changes = ["USER agent", "WORKDIR /workspace", "ENV PATH=/bin", 'CMD ["/bin/sh"]']
    subprocess.run(
        [DOCKER, "import", *(arg for c in changes for arg in ("--change", c)), "-", base],
        input=_rootfs_tar(applets=applets),
        check=True,
        capture_output=True,
    )
    with tempfile.TemporaryDirectory() as context:
        (Path(context) / "Dockerfile").write_text(
            _AGENT_DOCKERFILE.format(base=base, definition=definition)
        )
        subprocess.run([DOCKER, "build", "-q", "-t", ref, context], check=True, capture_output=True)
    return ref


if __name__ == "__main__":
    ensure_test_images(rebuild=True)
    print("built", BUSYBOX_IMAGE, AGENT_IMAGE)
