"""Create an agent's container so that it never runs as root (run_as.py has the rules).

A user the image names can only be told from the image's own ``/etc/passwd`` and ``/etc/group``:
they are read from a created container, before it starts. A name that turns out to be uid 0, or
to have group 0, is not started: the container is made again with the unprivileged numbers. So
is one whose ids were not the planned ones, with its tmpfs owned by its real ids. An image's
files never change under its id, so what was found is kept per image: later spawns of it are
planned with the right ids from the start and read nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from parallax_docker.backends.base import Backend, ContainerSpec, ImageInfo
from parallax_docker.errors import ParallaxError
from parallax_docker.run_as import RunAs, plan_user, settle
from parallax_docker.security import with_run_as

log = logging.getLogger(__name__)

_MAX_ACCOUNTS_BYTES = 1024 * 1024
# Images whose user was looked up; an image id per image build, so a few hundred at most.
_KNOWN_MAX = 512


class UserLookup:
    def __init__(self, backend: Backend, *, allow_root: bool, tmpfs_size: str) -> None:
        self._backend = backend
        self._allow_root = allow_root
        self._tmpfs_size = tmpfs_size
        self._known: dict[str, RunAs] = {}

    def plan(self, image: ImageInfo) -> RunAs:
        """Who ``image``'s containers run as: as looked up before, else as its USER names."""
        return self._known.get(image.id) or plan_user(image.user, allow_root=self._allow_root)

    async def create(self, spec: ContainerSpec, planned: RunAs, image: ImageInfo) -> str:
        """``backend.create(spec)``; made again as the image's real, never-root ids when needed."""
        container_id = await self._backend.create(spec)
        if not planned.needs_lookup or planned.user is None or image.id in self._known:
            return container_id
        try:
            final = await self._look_up(container_id, planned)
        except BaseException:
            await _discard(self._backend, container_id)
            raise
        self._remember(image.id, planned if final is None else final)
        if final is None:
            return container_id
        log.info(
            "the image's user %s is not what was planned: running it as %s",
            planned.user,
            final.user,
            extra={"image": spec.image},
        )
        await _discard(self._backend, container_id)
        return await self._backend.create(with_run_as(spec, final, self._tmpfs_size))

    async def resolve(self, spec: ContainerSpec, image: ImageInfo) -> RunAs:
        """What a container of ``spec`` will really run as, found without starting anything: a
        throwaway container is created (never started), read, removed. For containers the
        runtime cannot make again at will (pooled ones start at once)."""
        planned = self.plan(image)
        if not planned.needs_lookup or planned.user is None or image.id in self._known:
            return planned
        container_id = await self._backend.create(spec)
        try:
            final = await self._look_up(container_id, planned)
        finally:
            await _discard(self._backend, container_id)
        known = planned if final is None else final
        self._remember(image.id, known)
        return known

    async def _look_up(self, container_id: str, planned: RunAs) -> RunAs | None:
        passwd = await self._backend.read_file(container_id, "/etc/passwd", _MAX_ACCOUNTS_BYTES)
        group = await self._backend.read_file(container_id, "/etc/group", _MAX_ACCOUNTS_BYTES)
        return settle(planned, _text(passwd), _text(group))

    def _remember(self, image_id: str, run_as: RunAs) -> None:
        if len(self._known) >= _KNOWN_MAX:
            self._known.clear()
        # Looked up: the ids are known now, and the next spawn needs no lookup.
        self._known[image_id] = RunAs(run_as.user, run_as.uid, run_as.gid)


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="replace")


async def _discard(backend: Backend, container_id: str) -> None:
    with contextlib.suppress(ParallaxError):
        await asyncio.shield(backend.remove(container_id))
