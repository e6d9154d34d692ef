"""What the image builder needs from a container engine, in the project's own terms.

The Docker implementation lives in ``backends/docker/build.py``; tests pass fakes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from parallax_docker.backends.base import ImageInfo


@dataclass(frozen=True)
class BuildStep:
    """The builder started instruction ``index`` of ``total`` ("Step 3/12 : RUN ...")."""

    index: int
    total: int
    instruction: str


@dataclass(frozen=True)
class BuildOutput:
    """One line the build printed (command output, cache notes)."""

    line: str


@dataclass(frozen=True)
class BuildDone:
    """The build finished and produced ``image_id``."""

    image_id: str


BuildEvent = BuildStep | BuildOutput | BuildDone


class ImageEngine(Protocol):
    async def get_image(self, ref: str) -> ImageInfo | None:
        """The image called ``ref``, or None when the engine has no such image."""
        ...

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
        """Build from a gzipped tar ``context``; raises a project error when the build fails.

        ``network`` is the build steps' network mode (None: the engine's default bridge).
        """
        ...

    def stream_pull(self, ref: str) -> AsyncIterator[str]:
        """Pull ``ref``, yielding progress lines; raises a project error when it cannot."""
        ...

    async def import_rootfs(
        self, chunks: AsyncIterator[bytes], ref: str, changes: tuple[str, ...]
    ) -> str:
        """Import a root filesystem tar as image ``ref`` (``docker import``); returns its id."""
        ...

    async def close(self) -> None: ...
