"""Where the base's Debian comes from: present, pulled, or debootstrapped and imported."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from parallax_docker.backends.base import ImageInfo
from parallax_docker.backends.capabilities import BuildEvent
from parallax_docker.errors import EngineError, SocketError
from parallax_docker.images.bootstrap import DebianSource, debian_sources, mounts_under


def image(ref: str) -> ImageInfo:
    return ImageInfo(ref, (ref,), None, None, {}, 1, None)


@dataclass
class FakeEngine:
    images: dict[str, ImageInfo] = field(default_factory=dict)
    pull_error: Exception | None = field(
        default_factory=lambda: EngineError("cannot pull: no such host")
    )
    pulled: list[str] = field(default_factory=list)
    imported: list[tuple[str, bytes, tuple[str, ...]]] = field(default_factory=list)

    async def get_image(self, ref: str) -> ImageInfo | None:
        return self.images.get(ref)

    def stream_build(
        self,
        context: bytes,
        *,
        dockerfile: str,
        tag: str,
        build_args: Mapping[str, str],
        labels: Mapping[str, str],
        no_cache: bool,
        network: str | None = None,
    ) -> AsyncIterator[BuildEvent]:
        raise AssertionError("not used")

    async def stream_pull(self, ref: str) -> AsyncIterator[str]:
        self.pulled.append(ref)
        if self.pull_error is not None:
            raise self.pull_error
        yield "Pull complete"
        self.images[ref] = image(ref)

    async def import_rootfs(
        self, chunks: AsyncIterator[bytes], ref: str, changes: tuple[str, ...]
    ) -> str:
        data = b"".join([chunk async for chunk in chunks])
        self.imported.append((ref, data, changes))
        return "sha256:" + "1" * 64

    async def close(self) -> None:
        pass


@dataclass
class FakeRunner:
    """Plays debootstrap by making a tiny rootfs; records every command."""

    commands: list[list[str]] = field(default_factory=list)
    fail_debootstrap: bool = False

    async def lines(self, argv: Sequence[str]) -> AsyncIterator[str]:
        self.commands.append(list(argv))
        if argv[0] == "debootstrap":
            if self.fail_debootstrap:
                raise EngineError("debootstrap exited with status 1")
            target = Path(argv[3])
            for sub in ("etc/apt/sources.list.d", "var/lib/apt/lists/partial", "var/cache/apt"):
                (target / sub).mkdir(parents=True)
            (target / "etc/apt/sources.list").write_text("deb http://x bookworm main\n")
            (target / "var/lib/apt/lists/deb.debian.org_InRelease").write_text("lists")
            (target / "var/cache/apt/pkgcache.bin").write_text("cache")
            yield "I: Base system installed successfully."
        elif argv[0] == "rm":
            shutil.rmtree(argv[-1])

    async def output(self, argv: Sequence[str]) -> AsyncIterator[bytes]:
        self.commands.append(list(argv))
        yield b"tar-bytes"


def source(engine: FakeEngine, runner: FakeRunner, tmp_path: Path) -> DebianSource:
    return DebianSource(engine, runner=runner, work_dir=tmp_path, can_bootstrap=lambda: None)


async def test_a_present_debian_image_is_used_as_is(tmp_path: Path) -> None:
    engine = FakeEngine(images={"debian:bookworm-slim": image("debian")})
    runner = FakeRunner()
    assert await source(engine, runner, tmp_path).ensure(print, print) == "debian:bookworm-slim"
    assert engine.pulled == [] and runner.commands == []


async def test_a_cached_rootfs_is_reused_without_pulling_or_debootstrap(tmp_path: Path) -> None:
    engine = FakeEngine(images={"parallax/debian-rootfs:bookworm": image("rootfs")})
    runner = FakeRunner()
    ref = await source(engine, runner, tmp_path).ensure(print, print)
    assert ref == "parallax/debian-rootfs:bookworm"
    assert engine.pulled == [] and runner.commands == []


async def test_a_pullable_debian_image_is_pulled(tmp_path: Path) -> None:
    engine = FakeEngine(pull_error=None)
    ref = await source(engine, FakeRunner(), tmp_path).ensure(print, print)
    assert ref == "debian:bookworm-slim"
    assert engine.pulled == ["debian:bookworm-slim"]


async def test_without_a_registry_debian_is_bootstrapped_and_imported(tmp_path: Path) -> None:
    engine = FakeEngine()
    runner = FakeRunner()
    said: list[str] = []
    logged: list[str] = []
    ref = await source(engine, runner, tmp_path).ensure(said.append, logged.append)
    assert ref == "parallax/debian-rootfs:bookworm"
    debootstrap = runner.commands[0]
    assert debootstrap[:3] == ["debootstrap", "--variant=minbase", "bookworm"]
    assert debootstrap[4] == "http://deb.debian.org/debian"
    [(imported_ref, data, changes)] = engine.imported
    assert (imported_ref, data) == ("parallax/debian-rootfs:bookworm", b"tar-bytes")
    assert 'CMD ["/bin/bash"]' in changes
    assert any("cannot pull" in line for line in said)
    assert logged == ["I: Base system installed successfully."]


async def test_the_bootstrapped_rootfs_is_trimmed_before_import(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    class Inspecting(FakeRunner):
        async def output(self, argv: Sequence[str]) -> AsyncIterator[bytes]:
            target = Path(argv[argv.index("-C") + 1])
            seen["sources"] = (target / "etc/apt/sources.list.d/debian.sources").read_text()
            seen["old_list"] = (target / "etc/apt/sources.list").exists()
            seen["lists"] = sorted(p.name for p in (target / "var/lib/apt/lists").iterdir())
            seen["caches"] = list((target / "var/cache/apt").glob("*.bin"))
            yield b"tar"

    await source(FakeEngine(), Inspecting(), tmp_path).ensure(print, print)
    assert "bookworm-security" in str(seen["sources"])
    assert seen["old_list"] is False
    assert seen["lists"] == []
    assert seen["caches"] == []


async def test_the_scratch_directory_is_removed_even_when_debootstrap_fails(
    tmp_path: Path,
) -> None:
    runner = FakeRunner(fail_debootstrap=True)
    with pytest.raises(EngineError, match="debootstrap"):
        await source(FakeEngine(), runner, tmp_path).ensure(print, print)
    assert list(tmp_path.iterdir()) == []
    rm = runner.commands[-1]
    assert rm[:3] == ["rm", "-rf", "--one-file-system"]


async def test_a_host_that_cannot_debootstrap_says_why(tmp_path: Path) -> None:
    engine = FakeEngine()
    debian = DebianSource(
        engine, runner=FakeRunner(), work_dir=tmp_path, can_bootstrap=lambda: "no debootstrap"
    )
    with pytest.raises(EngineError, match="no debootstrap") as caught:
        await debian.ensure(print, print)
    assert "apt-get install -y debootstrap" in caught.value.resolution


async def test_an_unreachable_engine_is_not_mistaken_for_a_missing_registry(
    tmp_path: Path,
) -> None:
    engine = FakeEngine(pull_error=SocketError("cannot connect to the Docker engine"))
    runner = FakeRunner()
    with pytest.raises(SocketError):
        await source(engine, runner, tmp_path).ensure(print, print)
    assert runner.commands == []


async def test_a_chosen_base_image_is_pulled_and_never_bootstrapped(tmp_path: Path) -> None:
    engine = FakeEngine()
    runner = FakeRunner()
    with pytest.raises(EngineError):
        await source(engine, runner, tmp_path).ensure(print, print, "mirror.local/debian:12")
    assert engine.pulled == ["mirror.local/debian:12"]
    assert runner.commands == []


def test_sources_add_security_for_the_debian_mirror() -> None:
    text = debian_sources("http://deb.debian.org/debian/", "bookworm")
    assert "URIs: http://deb.debian.org/debian\n" in text
    assert "Suites: bookworm bookworm-updates\n" in text
    assert "URIs: http://deb.debian.org/debian-security\n" in text


def test_sources_for_another_mirror_leave_security_out() -> None:
    assert "security" not in debian_sources("http://mirror.local/deb", "bookworm")


def test_mounts_under_finds_leftover_mounts_with_escaped_names(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 0:21 / /proc rw - proc proc rw\n"
        "90 1 0:5 / /var/tmp/parallax-rootfs-x/rootfs/proc rw - proc proc rw\n"
        "91 1 0:6 / /var/tmp/parallax-rootfs-x/rootfs/dev/my\\040dir rw - tmpfs t rw\n"
        "92 1 0:6 / /var/tmp/parallax-rootfs-xy/rootfs/dev rw - tmpfs t rw\n"
    )
    assert mounts_under(Path("/var/tmp/parallax-rootfs-x"), info) == [
        "/var/tmp/parallax-rootfs-x/rootfs/proc",
        "/var/tmp/parallax-rootfs-x/rootfs/dev/my dir",
    ]
