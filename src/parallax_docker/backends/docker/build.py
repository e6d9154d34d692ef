"""Engine-side image work for the builder: build, pull, import a rootfs, inspect.

The classic builder (Engine API ``POST /build`` without BuildKit) reports progress as JSON chunks
of free text; ``BuildStreamParser`` turns them into the project's build events. Failures leave as
project errors: the engine's build message is kept, because here it is the user's own build log
(a failing RUN step) and the person running the build needs it.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiodocker
import aiohttp
from yarl import URL

from parallax_docker.backends.base import ImageInfo
from parallax_docker.backends.docker import translate
from parallax_docker.backends.docker.connection import EngineConnection, timeouts
from parallax_docker.backends.docker.errors import engine_call
from parallax_docker.errors import EngineError
from parallax_docker.images.engine import BuildDone, BuildEvent, BuildOutput, BuildStep

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_BUILT = re.compile(r"^Successfully built ([0-9a-f]+)$")
_RUN_FAILED = re.compile(r"The command '.*' returned a non-zero code: (\d+)", re.DOTALL)


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


class DockerImageEngine:
    """The builder's ImageEngine on a local Docker engine reached through its Unix socket."""

    def __init__(
        self,
        socket_path: str,
        *,
        request_timeout_s: float = 30.0,
        connect_timeout_s: float = 3.0,
        pull_timeout_s: float = 300.0,
    ) -> None:
        # Builds and imports run as long as they need; only connecting is bounded.
        self._timeout, self._stream_timeout = timeouts(request_timeout_s, connect_timeout_s)
        # The only image pulled is Debian's slim one (about 30 MB); a registry that never
        # answers must not hold the build forever.
        self._pull_timeout_s = pull_timeout_s
        self._connection = EngineConnection(socket_path, self._timeout)

    def _client(self) -> aiodocker.Docker:
        return self._connection.client()

    async def close(self) -> None:
        await self._connection.close()

    async def get_image(self, ref: str) -> ImageInfo | None:
        async with engine_call("image", ref):
            try:
                data = await self._client()._query_json(f"images/{ref}/json")
            except aiodocker.DockerError as exc:
                if exc.status == 404:
                    return None
                raise
        return translate.image_info(data)

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
        async with engine_call("image", tag), self._post_build(params, context, tag) as response:
            async for raw in response.content:
                if not raw.strip():
                    continue
                chunk = json.loads(raw)
                if chunk.get("error") or chunk.get("errorDetail"):
                    raise EngineError(
                        _build_failure(chunk),
                        resolution="Read the build output above; fix the step and run it again.",
                    )
                for event in parser.feed(chunk):
                    yield event
        for event in parser.finish():
            yield event

    @asynccontextmanager
    async def _post_build(
        self, params: Mapping[str, str], context: bytes, tag: str
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        try:
            async with self._client()._query(
                "build",
                "POST",
                params=dict(params),
                data=context,
                headers={"Content-Type": "application/x-tar", "Content-Encoding": "gzip"},
                timeout=self._stream_timeout,
            ) as response:
                yield response
        except aiodocker.DockerError as exc:
            if exc.status in (400, 500):
                # The engine refused the context or the Dockerfile before any step ran; its
                # message is about the user's build, not a secret.
                raise EngineError(f"building {tag} failed: {exc.message.strip()}") from exc
            raise

    async def stream_pull(self, ref: str) -> AsyncIterator[str]:
        name, _, tag = ref.rpartition(":")
        if not name or "/" in tag:
            name, tag = ref, "latest"
        async with engine_call("image", ref):
            try:
                progress = self._client().images.pull(
                    name, tag=tag, stream=True, timeout=self._pull_timeout_s
                )
                async for chunk in progress:
                    line = _pull_line(chunk)
                    if line:
                        yield line
            except aiodocker.DockerError as exc:
                raise EngineError(
                    f"cannot pull {ref}: {exc.message.strip()}",
                    resolution="Check the registry is reachable, or let the builder bootstrap "
                    "Debian with debootstrap.",
                ) from exc

    async def import_rootfs(
        self, chunks: AsyncIterator[bytes], ref: str, changes: tuple[str, ...]
    ) -> str:
        repo, _, tag = ref.rpartition(":")
        query: list[tuple[str, str]] = [("fromSrc", "-"), ("repo", repo), ("tag", tag)]
        # `changes` repeats, which aiodocker's dict parameters cannot say; the query goes in
        # the (relative) URL instead.
        query.extend(("changes", change) for change in changes)
        path = URL("images/create").with_query(query)
        async with (
            engine_call("image", ref),
            self._client()._query(
                path,
                "POST",
                data=chunks,
                headers={"Content-Type": "application/x-tar"},
                timeout=self._stream_timeout,
            ) as response,
        ):
            body = await response.read()
        image_id = ""
        for raw in body.splitlines():
            if not raw.strip():
                continue
            message = json.loads(raw)
            if message.get("error"):
                raise EngineError(f"importing {ref} failed: {message['error']}")
            image_id = str(message.get("status") or image_id)
        if not image_id.startswith("sha256:"):
            raise EngineError(f"importing {ref} did not report an image id")
        return image_id


def _build_failure(chunk: Mapping[str, Any]) -> str:
    detail = chunk.get("errorDetail")
    message = str((detail or {}).get("message") or chunk.get("error") or "the build failed")
    # The classic builder repeats the whole RUN command here; the step line already showed it.
    failed_run = _RUN_FAILED.fullmatch(message.strip())
    if failed_run:
        return f"the step exited with code {failed_run.group(1)}"
    return message.strip()


def _pull_line(chunk: Mapping[str, Any]) -> str:
    status = str(chunk.get("status") or "")
    layer = str(chunk.get("id") or "")
    # Per-layer download ticks are too chatty for a progress line; keep the state changes.
    if chunk.get("progressDetail") and status in ("Downloading", "Extracting"):
        return ""
    return f"{layer}: {status}" if layer and status else status
