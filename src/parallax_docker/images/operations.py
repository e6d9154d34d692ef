"""The image operations the CLI (and the service's start-up) call: build and list.

This is where the builder meets the real engine: each call opens the platform the settings name
(backends/factory.py) for the running event loop and closes it afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from parallax_docker.backends.capabilities import ImageBuilding
from parallax_docker.backends.factory import create_deployment
from parallax_docker.config import Settings
from parallax_docker.errors import ConfigError
from parallax_docker.images import catalog
from parallax_docker.images.bootstrap import DebianSource
from parallax_docker.images.builder import BuildRequest, BuildResult, ImageBuilder
from parallax_docker.images.progress import Reporter


@asynccontextmanager
async def image_engine(
    settings: Settings, engine: ImageBuilding | None = None
) -> AsyncIterator[ImageBuilding]:
    """``engine`` when given (left open); else the platform's, closed at the end."""
    if engine is not None:
        yield engine
        return
    deployment = create_deployment(settings)
    try:
        if deployment.images is None:
            raise ConfigError(
                "this platform does not build images",
                resolution="Build the agent images where the platform can, then push them.",
            )
        yield deployment.images
    finally:
        await deployment.close()


async def build_images(
    settings: Settings,
    request: BuildRequest,
    report: Reporter,
    images_dir: Path,
    *,
    engine: ImageBuilding | None = None,
) -> list[BuildResult]:
    async with image_engine(settings, engine) as images:
        builder = ImageBuilder(images, settings, images_dir, DebianSource(images), report)
        return await builder.build(request)


@dataclass(frozen=True)
class ImageRow:
    """One line of ``images ls``."""

    image: str
    type: str
    status: str
    size: int | None
    cli_name: str
    cli_version: str | None
    created: str | None
    image_id: str | None

    def age_s(self, now: datetime) -> float | None:
        created = parse_created(self.created)
        return None if created is None else max(0.0, (now - created).total_seconds())

    def to_json(self, now: datetime) -> dict[str, Any]:
        body = asdict(self)
        body["age_s"] = self.age_s(now)
        return body


async def list_images(settings: Settings, *, engine: ImageBuilding | None = None) -> list[ImageRow]:
    async with image_engine(settings, engine) as images:
        rows = []
        for recipe in catalog.RECIPES:
            name = catalog.image_name(settings, recipe.type)
            info = await images.get_image(name)
            if info is None:
                rows.append(
                    ImageRow(name, recipe.type, "missing", None, recipe.cli_name, None, None, None)
                )
                continue
            rows.append(
                ImageRow(
                    image=name,
                    type=recipe.type,
                    status="built",
                    size=info.size,
                    cli_name=info.labels.get(catalog.LABEL_CLI_NAME, recipe.cli_name),
                    cli_version=info.labels.get(catalog.LABEL_CLI_VERSION),
                    created=info.created,
                    image_id=info.id,
                )
            )
        return rows


def parse_created(value: str | None) -> datetime | None:
    """The engine's RFC 3339 time with nanoseconds, which fromisoformat does not take."""
    if not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, dot, rest = text.partition(".")
    if dot:
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"
