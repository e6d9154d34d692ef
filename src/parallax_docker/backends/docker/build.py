"""Image building on Docker (the ImageBuilding capability): build, pull, import a rootfs, inspect.

The classic builder (Engine API ``POST /build`` without BuildKit) reports progress as JSON chunks
of free text; ``BuildStreamParser`` turns them into the project's build events. Failures leave as
project errors (backends/docker/errors.py): the engine's build message is kept, because here it
is the user's own build log (a failing RUN step) and the person running the build needs it.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from parallax_docker.backends.base import ImageInfo
from parallax_docker.backends.capabilities import BuildDone, BuildEvent, BuildOutput, BuildStep
from parallax_docker.backends.docker.backend import DockerBackend
from parallax_docker.backends.docker.engine import Engine
from parallax_docker.backends.docker.errors import (
    build_failure,
    engine_call,
    stream_failure,
)
from parallax_docker.errors import EngineError

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_BUILT = re.compile(r"^Successfully built ([0-9a-f]+)$")


class BuildStreamParser:
    """Turns the classic builder's JSON chunks into BuildEvents, one line at a time.

    A chunk's ``stream`` text may end mid-line (long RUN output is cut anywhere), so text is
    buffered until its newline arrives.
    """

    def __init__(self) -> None:
        self._pending = ""
        self._image_id: str | None = None

    def feed(self, chunk: Mapping[str, Any]) -> Iterator[BuildEvent]:
        aux = chunk.get("aux")
        if isinstance(aux, Mapping) and isinstance(aux.get("ID"), str):
            self._image_id = aux["ID"]
        text = chunk.get("stream")
        if not isinstance(text, str):
            status = chunk.get("status")
            if isinstance(status, str) and status:
                yield BuildOutput(status)
            return
        self._pending += text
        *lines, self._pending = re.split(r"\r?\n", self._pending)
        for line in lines:
            yield from self._line(line)

    def finish(self) -> Iterator[BuildEvent]:
        if self._pending:
            yield from self._line(self._pending)
            self._pending = ""
        if self._image_id is None:
            raise EngineError(
                "the engine ended the build without reporting an image",
                resolution="Run the build again; the daemon's log may say why it stopped.",
            )
        yield BuildDone(self._image_id)

    def _line(self, line: str) -> Iterator[BuildEvent]:
        step = _STEP.match(line)
        if step:
            yield BuildStep(int(step.group(1)), int(step.group(2)), step.group(3).strip())
            return
        built = _BUILT.match(line)
        if built and self._image_id is None:
            self._image_id = built.group(1)
        if line.strip():
            yield BuildOutput(line)


class DockerImageBuilding:
    """The image builder's engine (images/) on one Docker engine."""

    def __init__(
        self, engine: Engine, backend: DockerBackend, *, pull_timeout_s: float = 300.0
    ) -> None:
        self._engine = engine
        self._backend = backend
        # The only image pulled is Debian's slim one (about 30 MB); a registry that never
        # answers must not hold the build forever.
        self._pull_timeout_s = pull_timeout_s

    async def get_image(self, ref: str) -> ImageInfo | None:
        return await self._backend.get_image(ref)

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
        params: dict[str, str] = {
            "t": tag,
            "dockerfile": dockerfile,
            "buildargs": json.dumps(dict(build_args)),
            "labels": json.dumps(dict(labels)),
            "nocache": "1" if no_cache else "0",
            "rm": "1",
            "forcerm": "1",
            "pull": "0",
        }
        if network:
            params["networkmode"] = network
        parser = BuildStreamParser()
        async with engine_call("image", "build", tag):
            async for message in self._engine.images.build(context, params):
                failure = stream_failure(message)
                if failure is not None:
                    raise build_failure("build", tag, failure)
                for event in parser.feed(message):
                    yield event
        for event in parser.finish():
            yield event

    async def stream_pull(self, ref: str) -> AsyncIterator[str]:
        name, _, tag = ref.rpartition(":")
        if not name or "/" in tag:
            name, tag = ref, "latest"
        async with engine_call("image", "pull", ref):
            async for message in self._engine.images.pull(name, tag, self._pull_timeout_s):
                failure = stream_failure(message)
                if failure is not None:
                    raise build_failure("pull", ref, failure)
                line = _pull_line(message)
                if line:
                    yield line

    async def import_rootfs(
        self, chunks: AsyncIterator[bytes], ref: str, changes: tuple[str, ...]
    ) -> str:
        repo, _, tag = ref.rpartition(":")
        async with engine_call("image", "import", ref):
            messages = await self._engine.images.import_rootfs(chunks, repo, tag, changes)
        image_id = ""
        for message in messages:
            failure = stream_failure(message)
            if failure is not None:
                raise build_failure("import", ref, failure)
            image_id = str(message.get("status") or image_id)
        if not image_id.startswith("sha256:"):
            raise EngineError(f"importing {ref} did not report an image id")
        return image_id


def _pull_line(chunk: Mapping[str, Any]) -> str:
    status = str(chunk.get("status") or "")
    layer = str(chunk.get("id") or "")
    # Per-layer download ticks are too chatty for a progress line; keep the state changes.
    if chunk.get("progressDetail") and status in ("Downloading", "Extracting"):
        return ""
    return f"{layer}: {status}" if layer and status else status
