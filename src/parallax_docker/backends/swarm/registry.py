"""Agent images on a Swarm: built on the manager, pushed to the cluster's own registry, run by
digest.

No public registry is needed: the project's scripts run Debian's ``docker-registry`` (the CNCF
distribution registry) for the cluster (``PARALLAX_SWARM_REGISTRY``, host:port), and every
node's engine trusts it. A service names its image as ``<registry>/<path>@sha256:...``, so
every node runs exactly the image the manager has, and a node that lacks it pulls it from there.
An image the manager has but the registry does not (built or loaded by hand) is pushed the first
time an agent needs it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from parallax_docker.backends.base import ImageInfo
from parallax_docker.backends.capabilities import BuildDone, BuildEvent, BuildOutput
from parallax_docker.backends.docker.build import DockerImageBuilding
from parallax_docker.backends.docker.engine import Engine
from parallax_docker.backends.docker.errors import build_failure, engine_call, stream_failure
from parallax_docker.backends.swarm.engine import SwarmAPI
from parallax_docker.backends.swarm.translate import repository
from parallax_docker.errors import EngineError, ImageNotFoundError

log = logging.getLogger(__name__)

PUSH_TIMEOUT_S = 600.0


class Registry:
    """Turns the image an agent asks for into the digest reference every node can pull."""

    def __init__(self, engine: Engine, api: SwarmAPI, registry: str) -> None:
        self._engine = engine
        self._api = api
        self.address = registry
        self._locks: dict[str, asyncio.Lock] = {}

    async def resolve(self, ref: str) -> str:
        """``<registry>/<path>@sha256:...`` of the manager's image ``ref`` (pushed if need be)."""
        image = await self.local(ref)
        if image is None:
            raise ImageNotFoundError(f"image {ref} is not built")
        found = self._digest(image)
        if found is not None:
            return found
        lock = self._locks.setdefault(str(image.get("Id")), asyncio.Lock())
        async with lock:
            async with engine_call("image", "inspect", ref):
                image = await self._engine.images.inspect(ref)
            return self._digest(image) or await self._push(ref, image)

    async def local(self, ref: str) -> dict[str, Any] | None:
        """The manager's image ``ref``; one it lacks is pulled from the cluster's registry (a
        runtime moved to another manager finds there what the first one pushed). None when
        neither has it."""
        found = await self._inspect(ref)
        if found is not None:
            return found
        async with self._locks.setdefault(f"pull:{ref}", asyncio.Lock()):
            return await self._inspect(ref) or await self._pull(ref)

    async def _pull(self, ref: str) -> dict[str, Any] | None:
        path, tag = repository(ref)
        remote = f"{self.address}/{path}"
        if await self._inspect(f"{remote}:{tag}") is None:
            try:
                async with engine_call("image", "pull", f"{remote}:{tag}"):
                    async for message in self._engine.images.pull(remote, tag, PUSH_TIMEOUT_S):
                        if stream_failure(message) is not None:
                            return None
            except (ImageNotFoundError, EngineError):
                return None
        name, _, own_tag = ref.rpartition(":")
        if not name or "/" in own_tag or "@" in ref:
            name, own_tag = ref.partition("@")[0], "latest"
        async with engine_call("image", "tag", ref):
            await self._api.tag_image(f"{remote}:{tag}", name, own_tag)
        log.info("pulled %s from the cluster's registry", ref)
        return await self._inspect(ref)

    async def _inspect(self, ref: str) -> dict[str, Any] | None:
        try:
            async with engine_call("image", "inspect", ref):
                return await self._engine.images.inspect(ref)
        except ImageNotFoundError:
            return None

    def _digest(self, image: Mapping[str, Any]) -> str | None:
        for digest in image.get("RepoDigests") or ():
            if str(digest).startswith(self.address + "/"):
                return str(digest)
        return None

    async def _push(self, ref: str, image: Mapping[str, Any]) -> str:
        path, tag = repository(ref)
        target = f"{self.address}/{path}"
        log.info("pushing %s to the cluster's registry as %s:%s", ref, target, tag)
        async with engine_call("image", "tag", ref):
            await self._api.tag_image(str(image.get("Id")), target, tag)
        digest = ""
        async for line in self.stream_push(target, tag):
            digest = line if line.startswith("sha256:") else digest
        if not digest:
            raise EngineError(f"pushing {ref} to {self.address} reported no digest")
        return f"{target}@{digest}"

    async def stream_push(self, name: str, tag: str) -> AsyncIterator[str]:
        """Push ``name:tag``: progress lines, then the pushed digest (``sha256:...``) last."""
        async with engine_call("image", "push", f"{name}:{tag}"):
            async for message in self._api.push_image(name, tag, PUSH_TIMEOUT_S):
                failure = stream_failure(message)
                if failure is not None:
                    raise build_failure("push", f"{name}:{tag}", failure)
                aux = message.get("aux") if isinstance(message, Mapping) else None
                if isinstance(aux, Mapping) and isinstance(aux.get("Digest"), str):
                    yield str(aux["Digest"])
                elif isinstance(message, Mapping) and message.get("status"):
                    yield str(message["status"])


class SwarmImageBuilding:
    """The image builder's engine on a Swarm: the manager builds, then pushes what it built to
    the cluster's registry, where every node can pull it."""

    def __init__(self, local: DockerImageBuilding, registry: Registry) -> None:
        self._local = local
        self._registry = registry

    async def get_image(self, ref: str) -> ImageInfo | None:
        return await self._local.get_image(ref)

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
        done: BuildDone | None = None
        async for event in self._local.stream_build(
            context,
            dockerfile=dockerfile,
            tag=tag,
            build_args=build_args,
            labels=labels,
            no_cache=no_cache,
            network=network,
        ):
            if isinstance(event, BuildDone):
                done = event  # told once the image is in the registry too
                continue
            yield event
        if done is None:
            return
        pushed = await self._registry.resolve(tag)
        yield BuildOutput(f"pushed to the cluster's registry: {pushed}")
        yield done

    def stream_pull(self, ref: str) -> AsyncIterator[str]:
        return self._local.stream_pull(ref)

    async def import_rootfs(
        self, chunks: AsyncIterator[bytes], ref: str, changes: tuple[str, ...]
    ) -> str:
        # A root filesystem is what images are built FROM, on the manager: never run itself.
        return await self._local.import_rootfs(chunks, ref, changes)
