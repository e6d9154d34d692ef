"""Build the agent images: which ones, in what order, from what, and what became of each.

The base image goes first (its Debian comes from DebianSource); the images FROM it then build
side by side, a few at a time. A failure stops only the images that depend on the one that
failed; the rest still build, and every outcome is returned.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from parallax_docker.backends.capabilities import BuildDone, BuildOutput, BuildStep, ImageBuilding
from parallax_docker.config import Settings
from parallax_docker.errors import EngineError, ParallaxError, SocketError
from parallax_docker.images import catalog
from parallax_docker.images.context import build_context
from parallax_docker.images.progress import EventKind, ProgressEvent, Reporter, short

Outcome = Literal["built", "present", "failed", "blocked"]


class BaseSource(Protocol):
    async def ensure(
        self, say: Callable[[str], None], log: Callable[[str], None], override: str | None = None
    ) -> str: ...

    async def bootstrap(self, say: Callable[[str], None], log: Callable[[str], None]) -> str: ...


@dataclass(frozen=True)
class BuildRequest:
    types: tuple[str, ...] = ()
    no_cache: bool = False
    missing_only: bool = False
    keep_ca: bool = False
    extra_ca: bytes | None = None
    cli_versions: Mapping[str, str] = field(default_factory=dict)
    base_image: str | None = None
    # Bootstrap Debian anew even when a base is present (a build truly from nothing).
    fresh_base: bool = False
    jobs: int = 2
    network: str | None = None


@dataclass(frozen=True)
class BuildResult:
    image_type: str
    image: str
    outcome: Outcome
    seconds: float = 0.0
    image_id: str | None = None
    size: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in ("built", "present")


class ImageBuilder:
    def __init__(
        self,
        engine: ImageBuilding,
        settings: Settings,
        images_dir: Path,
        base_source: BaseSource,
        report: Reporter,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._images_dir = images_dir
        self._base_source = base_source
        self._report = report
        self._clock = clock

    async def plan(self, request: BuildRequest) -> tuple[list[str], list[BuildResult]]:
        """The types to build, and results for those skipped because they are present."""
        wanted = catalog.resolve_types(request.types)
        if not request.missing_only:
            return wanted, []
        to_build: list[str] = []
        present: list[BuildResult] = []
        for image_type in wanted:
            name = catalog.image_name(self._settings, image_type)
            info = await self._engine.get_image(name)
            if info is None:
                to_build.append(image_type)
            else:
                present.append(BuildResult(image_type, name, "present", size=info.size))
        return to_build, present

    async def build(self, request: BuildRequest) -> list[BuildResult]:
        to_build, present = await self.plan(request)
        for result in present:
            self._emit(result.image_type, "skipped", "already built")
        for image_type in to_build:
            self._emit(image_type, "queued")
        if not to_build:
            return present
        context = await asyncio.to_thread(build_context, self._images_dir, request.extra_ca)
        results: dict[str, BuildResult] = {r.image_type: r for r in present}

        if "base" in to_build:
            results["base"] = await self._build_base(context, request)
        base_name = catalog.image_name(self._settings, "base")
        base_ok = "base" not in to_build or results["base"].ok
        gate = asyncio.Semaphore(max(1, request.jobs))

        async def one(image_type: str) -> BuildResult:
            name = catalog.image_name(self._settings, image_type)
            if not base_ok:
                self._emit(image_type, "failed", "not built: the base image failed")
                return BuildResult(image_type, name, "blocked", error="the base image failed")
            async with gate:
                return await self._build_one(image_type, context, request, base_name)

        others = [t for t in to_build if t != "base"]
        for result in await asyncio.gather(*(one(t) for t in others)):
            results[result.image_type] = result
        return [results[t] for t in catalog.TYPES if t in results]

    async def _build_base(self, context: bytes, request: BuildRequest) -> BuildResult:
        started = self._clock()
        name = catalog.image_name(self._settings, "base")

        def say(text: str) -> None:
            self._emit("base", "note", text)

        def log(line: str) -> None:
            self._emit("base", "line", line)

        try:
            if request.fresh_base:
                debian = await self._base_source.bootstrap(say, log)
            else:
                debian = await self._base_source.ensure(say, log, request.base_image)
        except ParallaxError as exc:
            if isinstance(exc, SocketError):
                raise
            self._emit("base", "failed", exc.message)
            return BuildResult("base", name, "failed", self._clock() - started, error=exc.message)
        return await self._build_one("base", context, request, debian, started=started)

    async def _build_one(
        self,
        image_type: str,
        context: bytes,
        request: BuildRequest,
        base_image: str,
        *,
        started: float | None = None,
    ) -> BuildResult:
        recipe = catalog.recipe_for(image_type)
        name = catalog.image_name(self._settings, image_type)
        started = self._clock() if started is None else started
        args = catalog.build_args(
            recipe,
            base_image=base_image,
            cli_versions=request.cli_versions,
            keep_ca=request.keep_ca,
        )
        version = args.get("CLI_VERSION")
        what = f"{name} from {base_image}" + (f", {recipe.cli_name} {version}" if version else "")
        self._emit(image_type, "start", f"building {what}")
        try:
            image_id = await self._run_build(image_type, context, recipe, name, args, request)
            info = await self._engine.get_image(name)
        except SocketError:
            raise
        except ParallaxError as exc:
            seconds = self._clock() - started
            self._emit(image_type, "failed", exc.message)
            return BuildResult(image_type, name, "failed", seconds, error=exc.message)
        seconds = self._clock() - started
        size = info.size if info is not None else None
        self._emit(image_type, "done", f"built in {seconds:.0f}s, {human_size(size)}")
        return BuildResult(image_type, name, "built", seconds, image_id, size)

    async def _run_build(
        self,
        image_type: str,
        context: bytes,
        recipe: catalog.ImageRecipe,
        name: str,
        args: Mapping[str, str],
        request: BuildRequest,
    ) -> str:
        image_id = ""
        events = self._engine.stream_build(
            context,
            dockerfile=recipe.dockerfile,
            tag=name,
            build_args=args,
            labels={},
            no_cache=request.no_cache,
            network=request.network,
        )
        step: BuildStep | None = None
        try:
            async for event in events:
                if isinstance(event, BuildStep):
                    step = event
                    self._emit(image_type, "step", event.instruction, event.index, event.total)
                elif isinstance(event, BuildOutput):
                    self._emit(image_type, "line", event.line)
                elif isinstance(event, BuildDone):
                    image_id = event.image_id
        except SocketError:
            raise
        except ParallaxError as exc:
            if step is None:
                raise
            where = f"step {step.index}/{step.total} ({short(step.instruction, 60)})"
            raise EngineError(f"{where}: {exc.message}", resolution=exc.resolution) from exc
        return image_id

    def _emit(
        self, image: str, kind: EventKind, text: str = "", step: int = 0, total: int = 0
    ) -> None:
        self._report(ProgressEvent(image, kind, text, step, total))


def human_size(size: int | None) -> str:
    if size is None:
        return "size unknown"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit in ("B", "kB") else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover - the loop always returns
