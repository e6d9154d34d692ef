"""Where the base image's Debian 12 comes from: a local or pulled debian:bookworm-slim, or a
rootfs made with debootstrap from a Debian mirror and imported, when no registry can serve one.

The imported rootfs is kept as ``parallax/debian-rootfs:bookworm`` and reused, so debootstrap
runs once per engine. It is made to look like debian:bookworm-slim where the Dockerfiles care:
the same apt sources (main, updates, security) and no package lists or caches.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Protocol

from parallax_docker.backends.capabilities import ImageBuilding
from parallax_docker.errors import EngineError, ParallaxError, SocketError
from parallax_docker.images import commands
from parallax_docker.images.catalog import DEBIAN_IMAGE, DEBIAN_MIRROR, DEBIAN_SUITE, ROOTFS_IMAGE

Say = Callable[[str], None]
_OCTAL = re.compile(r"\\([0-7]{3})")


class CommandRunner(Protocol):
    def lines(self, argv: Sequence[str]) -> AsyncIterator[str]: ...

    def output(self, argv: Sequence[str]) -> AsyncIterator[bytes]: ...


class HostCommands:
    def lines(self, argv: Sequence[str]) -> AsyncIterator[str]:
        return commands.stream_lines(argv)

    def output(self, argv: Sequence[str]) -> AsyncIterator[bytes]:
        return commands.stream_bytes(argv)


class DebianSource:
    """Finds or makes the Debian 12 image that Dockerfile.base builds FROM."""

    def __init__(
        self,
        engine: ImageBuilding,
        *,
        runner: CommandRunner | None = None,
        work_dir: Path = Path("/var/tmp"),  # noqa: S108 - needs exec and device nodes; /tmp may not
        mirror: str = DEBIAN_MIRROR,
        suite: str = DEBIAN_SUITE,
        preferred: str = DEBIAN_IMAGE,
        rootfs_ref: str = ROOTFS_IMAGE,
        can_bootstrap: Callable[[], str | None] | None = None,
    ) -> None:
        self._engine = engine
        self._runner = runner or HostCommands()
        self._work_dir = work_dir
        self._mirror = mirror.rstrip("/")
        self._suite = suite
        self._preferred = preferred
        self._rootfs_ref = rootfs_ref
        self._can_bootstrap = can_bootstrap or bootstrap_problem

    async def ensure(self, say: Say, log: Say, override: str | None = None) -> str:
        """The image ref to build the base FROM, pulling or bootstrapping it if needed.

        ``say`` gets the milestones, ``log`` the commands' own output lines.
        """
        if override is not None:
            return await self._ensure_named(override, say, log)
        for ref in (self._preferred, self._rootfs_ref):
            if await self._engine.get_image(ref) is not None:
                say(f"using {ref} (present)")
                return ref
        try:
            await self._pull(self._preferred, say, log)
            return self._preferred
        except SocketError:
            raise
        except ParallaxError as exc:
            say(f"cannot pull {self._preferred}; bootstrapping Debian instead ({exc.message})")
        await self.bootstrap(say, log)
        return self._rootfs_ref

    async def _ensure_named(self, ref: str, say: Say, log: Say) -> str:
        if await self._engine.get_image(ref) is not None:
            say(f"using {ref} (present)")
            return ref
        await self._pull(ref, say, log)
        return ref

    async def _pull(self, ref: str, say: Say, log: Say) -> None:
        say(f"pulling {ref}")
        async for line in self._engine.stream_pull(ref):
            log(line)

    async def bootstrap(self, say: Say, log: Say) -> str:
        """debootstrap a minimal Debian into a scratch dir, import it, remove the dir."""
        problem = self._can_bootstrap()
        if problem is not None:
            raise EngineError(
                f"no Debian 12 image to build on: {self._preferred} cannot be pulled and {problem}",
                resolution="Install debootstrap and run as root (apt-get install -y debootstrap), "
                "or make a registry serving debian:bookworm-slim reachable.",
            )
        scratch = await asyncio.to_thread(self._make_scratch)
        target = scratch / "rootfs"
        try:
            say(f"debootstrap --variant=minbase {self._suite} from {self._mirror}")
            argv = ["debootstrap", "--variant=minbase", self._suite, str(target), self._mirror]
            async for line in self._runner.lines(argv):
                log(line)
            await asyncio.to_thread(self._make_slim, target)
            say(f"importing the rootfs as {self._rootfs_ref}")
            image_id = await self._engine.import_rootfs(
                self._runner.output(tar_command(target)), self._rootfs_ref, self._changes()
            )
            say(f"imported {self._rootfs_ref} ({image_id[:19]})")
        finally:
            await self._remove(scratch)
        return image_id

    def _make_scratch(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="parallax-rootfs-", dir=self._work_dir)).resolve()

    def _changes(self) -> tuple[str, ...]:
        return (
            'CMD ["/bin/bash"]',
            f"LABEL parallax.image.type=rootfs parallax.rootfs.suite={self._suite} "
            f"parallax.rootfs.mirror={self._mirror}",
        )

    def _make_slim(self, target: Path) -> None:
        sources = target / "etc/apt/sources.list.d/debian.sources"
        sources.write_text(debian_sources(self._mirror, self._suite))
        (target / "etc/apt/sources.list").unlink(missing_ok=True)
        for leftover in ("var/lib/apt/lists", "var/cache/apt/archives"):
            _empty_dir(target / leftover)
        for cache in (target / "var/cache/apt").glob("*.bin"):
            cache.unlink()

    async def _remove(self, scratch: Path) -> None:
        # debootstrap mounts /proc and /sys (and may bind /dev) inside the target and can leave
        # them mounted when it fails; unmount first, and never let rm cross into another
        # filesystem, or it would delete the host's files behind a bind mount.
        leftovers = await asyncio.to_thread(mounts_under, scratch)
        for mount_point in sorted(leftovers, key=len, reverse=True):
            with contextlib.suppress(ParallaxError):
                await _drain(self._runner.lines(["umount", "-l", mount_point]))
        await _drain(self._runner.lines(["rm", "-rf", "--one-file-system", str(scratch)]))


def debian_sources(mirror: str, suite: str) -> str:
    """deb822 apt sources like debian:bookworm-slim's: main, updates and security."""
    mirror = mirror.rstrip("/")
    text = (
        f"Types: deb\nURIs: {mirror}\nSuites: {suite} {suite}-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    if mirror.endswith("/debian"):
        text += (
            f"\nTypes: deb\nURIs: {mirror}-security\nSuites: {suite}-security\n"
            "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        )
    return text


def tar_command(target: Path) -> list[str]:
    # Device nodes, /proc and /sys contents belong to the engine at run time, not the image.
    return [
        "tar",
        "--numeric-owner",
        "--xattrs",
        "--one-file-system",
        "-C",
        str(target),
        "--exclude=./dev/*",
        "--exclude=./proc/*",
        "--exclude=./sys/*",
        "-c",
        ".",
    ]


def bootstrap_problem() -> str | None:
    """Why this host cannot debootstrap, or None when it can."""
    if shutil.which("debootstrap") is None:
        return "debootstrap is not installed"
    if os.geteuid() != 0:
        return "debootstrap needs root"
    return None


def mounts_under(root: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> list[str]:
    prefix = str(root).rstrip("/") + "/"
    try:
        text = mountinfo.read_text()
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 4:
            point = _unescape(fields[4])
            if point.startswith(prefix):
                found.append(point)
    return found


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (\040).
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def _empty_dir(path: Path) -> None:
    if not path.is_dir():
        return
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        elif child.name != "lock":
            child.unlink()


async def _drain(lines: AsyncIterator[str]) -> None:
    async for _ in lines:
        pass
