"""The builder's plan and outcomes, on a fake engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from parallax_docker.backends.base import ImageInfo
from parallax_docker.backends.capabilities import BuildDone, BuildEvent, BuildOutput, BuildStep
from parallax_docker.config import Settings, load_settings
from parallax_docker.errors import EngineError, SocketError
from parallax_docker.images.builder import BuildRequest, ImageBuilder, human_size
from parallax_docker.images.progress import ProgressEvent


def image(ref: str, size: int = 1000) -> ImageInfo:
    return ImageInfo(ref, (ref,), "1000:1000", None, {}, size, "2026-01-01T00:00:00Z")


@dataclass
class BuildCall:
    dockerfile: str
    tag: str
    build_args: Mapping[str, str]
    no_cache: bool
    context: bytes
    network: str | None


@dataclass
class FakeEngine:
    images: dict[str, ImageInfo] = field(default_factory=dict)
    builds: list[BuildCall] = field(default_factory=list)
    fail: set[str] = field(default_factory=set)

    async def get_image(self, ref: str) -> ImageInfo | None:
        return self.images.get(ref)

    async def stream_build(
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
        self.builds.append(BuildCall(dockerfile, tag, dict(build_args), no_cache, context, network))
        yield BuildStep(1, 2, "FROM x")
        yield BuildOutput("working")
        if tag in self.fail:
            raise EngineError(f"building {tag} failed: step 2 returned 1")
        yield BuildStep(2, 2, "RUN y")
        self.images[tag] = image(tag, 5_000_000)
        yield BuildDone(f"sha256:{tag}")

    async def stream_pull(self, ref: str) -> AsyncIterator[str]:
        raise EngineError("no registry")
        yield ""  # pragma: no cover

    async def import_rootfs(
        self, chunks: AsyncIterator[bytes], ref: str, changes: tuple[str, ...]
    ) -> str:
        raise AssertionError("not used")

    async def close(self) -> None:
        pass


@dataclass
class FakeDebian:
    ref: str = "debian:bookworm-slim"
    error: Exception | None = None
    asked: list[str | None] = field(default_factory=list)

    async def ensure(
        self, say: Callable[[str], None], log: Callable[[str], None], override: str | None = None
    ) -> str:
        self.asked.append(override)
        say("using the fake Debian")
        if self.error is not None:
            raise self.error
        return override or self.ref

    async def bootstrap(self, say: Callable[[str], None], log: Callable[[str], None]) -> str:
        self.asked.append("bootstrap")
        return "parallax/debian-rootfs:bookworm"


@pytest.fixture
def settings() -> Settings:
    return load_settings({})


@pytest.fixture
def images_dir(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile.base").write_text("FROM scratch\n")
    return tmp_path


def make(
    engine: FakeEngine, settings: Settings, images_dir: Path, debian: FakeDebian | None = None
) -> tuple[ImageBuilder, list[ProgressEvent]]:
    events: list[ProgressEvent] = []
    builder = ImageBuilder(engine, settings, images_dir, debian or FakeDebian(), events.append)
    return builder, events


async def test_agent_images_build_from_the_base_with_their_pinned_version(
    settings: Settings, images_dir: Path
) -> None:
    engine = FakeEngine()
    builder, _ = make(engine, settings, images_dir)
    results = await builder.build(BuildRequest(types=("claude",)))
    assert [r.outcome for r in results] == ["built", "built"]
    base, claude = engine.builds
    assert (base.dockerfile, base.build_args["BASE_IMAGE"]) == (
        "Dockerfile.base",
        "debian:bookworm-slim",
    )
    assert claude.tag == "parallax/agent-claude:latest"
    assert claude.build_args["BASE_IMAGE"] == "parallax/agent-base:latest"
    assert claude.build_args["CLI_VERSION"] == "2.1.332"


async def test_missing_only_skips_images_that_are_present(
    settings: Settings, images_dir: Path
) -> None:
    engine = FakeEngine(images={"parallax/agent-base:latest": image("base")})
    builder, events = make(engine, settings, images_dir)
    results = await builder.build(BuildRequest(types=("gemini",), missing_only=True))
    assert [(r.image_type, r.outcome) for r in results] == [
        ("base", "present"),
        ("gemini", "built"),
    ]
    assert [b.tag for b in engine.builds] == ["parallax/agent-gemini:latest"]
    assert ProgressEvent("base", "skipped", "already built") in events


async def test_nothing_missing_builds_nothing(settings: Settings, images_dir: Path) -> None:
    engine = FakeEngine(
        images={
            settings.image_for(t): image(t)
            for t in ("base", "claude", "codex", "gemini", "aider", "echo")
        }
    )
    builder, _ = make(engine, settings, images_dir)
    results = await builder.build(BuildRequest(missing_only=True))
    assert {r.outcome for r in results} == {"present"}
    assert engine.builds == []


async def test_a_failed_base_blocks_the_images_built_from_it(
    settings: Settings, images_dir: Path
) -> None:
    engine = FakeEngine(fail={"parallax/agent-base:latest"})
    builder, events = make(engine, settings, images_dir)
    results = await builder.build(BuildRequest(types=("claude", "echo")))
    assert [(r.image_type, r.outcome) for r in results] == [
        ("base", "failed"),
        ("claude", "blocked"),
        ("echo", "blocked"),
    ]
    assert results[0].error == "step 1/2 (FROM x): building parallax/agent-base:latest failed: " + (
        "step 2 returned 1"
    )
    assert any(e.kind == "failed" and e.image == "claude" for e in events)


async def test_one_failed_agent_image_does_not_stop_the_others(
    settings: Settings, images_dir: Path
) -> None:
    engine = FakeEngine(fail={"parallax/agent-codex:latest"})
    builder, _ = make(engine, settings, images_dir)
    results = await builder.build(BuildRequest(types=("all",)))
    outcomes = {r.image_type: r.outcome for r in results}
    assert outcomes.pop("codex") == "failed"
    assert set(outcomes.values()) == {"built"}


async def test_no_debian_image_fails_the_base_with_the_reason(
    settings: Settings, images_dir: Path
) -> None:
    debian = FakeDebian(error=EngineError("debootstrap is not installed"))
    builder, _ = make(FakeEngine(), settings, images_dir, debian)
    results = await builder.build(BuildRequest(types=("base",)))
    assert results[0].outcome == "failed"
    assert results[0].error == "debootstrap is not installed"


async def test_an_unreachable_engine_stops_the_whole_build(
    settings: Settings, images_dir: Path
) -> None:
    debian = FakeDebian(error=SocketError("cannot connect to the Docker engine"))
    builder, _ = make(FakeEngine(), settings, images_dir, debian)
    with pytest.raises(SocketError):
        await builder.build(BuildRequest(types=("base",)))


async def test_options_reach_the_engine(settings: Settings, images_dir: Path) -> None:
    engine = FakeEngine()
    debian = FakeDebian()
    builder, _ = make(engine, settings, images_dir, debian)
    await builder.build(
        BuildRequest(
            types=("aider",),
            no_cache=True,
            keep_ca=True,
            extra_ca=b"-----BEGIN CERTIFICATE-----\n",
            cli_versions={"aider": "0.80.0"},
            base_image="registry.local/debian:12",
            network="host",
        )
    )
    base, aider = engine.builds
    assert debian.asked == ["registry.local/debian:12"]
    assert base.build_args == {"BASE_IMAGE": "registry.local/debian:12", "KEEP_CA": "1"}
    assert aider.build_args["CLI_VERSION"] == "0.80.0"
    assert base.no_cache and aider.no_cache
    assert base.network == aider.network == "host"
    assert base.context == aider.context


async def test_progress_reports_each_step_and_the_result(
    settings: Settings, images_dir: Path
) -> None:
    engine = FakeEngine(images={"parallax/agent-base:latest": image("base")})
    builder, events = make(engine, settings, images_dir)
    await builder.build(BuildRequest(types=("echo",), missing_only=True))
    echo = [(e.kind, e.step, e.total) for e in events if e.image == "echo"]
    assert echo == [
        ("queued", 0, 0),
        ("start", 0, 0),
        ("step", 1, 2),
        ("line", 0, 0),
        ("step", 2, 2),
        ("done", 0, 0),
    ]


@pytest.mark.parametrize(
    ("size", "text"),
    [(None, "size unknown"), (999, "999 B"), (309_801_683, "309.8 MB"), (1_120_000_000, "1.1 GB")],
)
def test_human_size_uses_decimal_units_like_docker(size: int | None, text: str) -> None:
    assert human_size(size) == text


async def test_fresh_base_bootstraps_debian_even_when_one_is_present(
    settings: Settings, images_dir: Path
) -> None:
    engine = FakeEngine()
    debian = FakeDebian()
    builder, _ = make(engine, settings, images_dir, debian)
    await builder.build(BuildRequest(types=("base",), fresh_base=True, no_cache=True))
    assert debian.asked == ["bootstrap"]
    (base,) = engine.builds
    assert base.build_args["BASE_IMAGE"] == "parallax/debian-rootfs:bookworm"
