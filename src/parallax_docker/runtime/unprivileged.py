"""Create an agent's container so that it never runs as root (run_as.py has the rules).

A user the image names can only be told from the image's own ``/etc/passwd`` and ``/etc/group``:
they are read from the created container, before it starts. A name that turns out to be uid 0,
or to have group 0, is not started: the container is made again with the unprivileged numbers.
So is one whose ids were not the planned ones, with its tmpfs owned by its real ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from parallax_docker.backends.base import Backend, ContainerSpec
from parallax_docker.errors import ParallaxError
from parallax_docker.run_as import RunAs, settle
from parallax_docker.security import with_run_as

log = logging.getLogger(__name__)

_MAX_ACCOUNTS_BYTES = 1024 * 1024


async def create_unprivileged(
    backend: Backend, spec: ContainerSpec, planned: RunAs, *, tmpfs_size: str
) -> str:
    """``backend.create(spec)``; made again as the image's real, never-root ids when needed."""
    container_id = await backend.create(spec)
    if not planned.needs_lookup or planned.user is None:
        return container_id
    try:
        passwd = await backend.read_file(container_id, "/etc/passwd", _MAX_ACCOUNTS_BYTES)
        group = await backend.read_file(container_id, "/etc/group", _MAX_ACCOUNTS_BYTES)
    except BaseException:
        await _discard(backend, container_id)
        raise
    final = settle(planned, _text(passwd), _text(group))
    if final is None:
        return container_id
    log.info(
        "the image's user %s is not what was planned: running it as %s",
        planned.user,
        final.user,
        extra={"image": spec.image},
    )
    await _discard(backend, container_id)
    return await backend.create(with_run_as(spec, final, tmpfs_size))


async def resolve_run_as(backend: Backend, spec: ContainerSpec, planned: RunAs) -> RunAs:
    """What a container of ``spec`` will really run as, found once without starting anything:
    a throwaway container is created (never started), its account files read, then removed.
    For containers the runtime cannot re-create at will (pooled ones start at once)."""
    if not planned.needs_lookup or planned.user is None:
        return planned
    container_id = await backend.create(spec)
    try:
        passwd = await backend.read_file(container_id, "/etc/passwd", _MAX_ACCOUNTS_BYTES)
        group = await backend.read_file(container_id, "/etc/group", _MAX_ACCOUNTS_BYTES)
    finally:
        await _discard(backend, container_id)
    final = settle(planned, _text(passwd), _text(group))
    return planned if final is None else final


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="replace")


async def _discard(backend: Backend, container_id: str) -> None:
    with contextlib.suppress(ParallaxError):
        await asyncio.shield(backend.remove(container_id))
