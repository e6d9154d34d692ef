"""Create an agent's container so that it never runs as root (run_as.py has the rules).

A user the image names can only be told from the image's own ``/etc/passwd`` and ``/etc/group``:
they are read from the created container, before it starts. A name that turns out to be uid 0,
or to have group 0, is not started: the container is made again with the unprivileged numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

from parallax_docker.backends.base import Backend, ContainerSpec
from parallax_docker.errors import ParallaxError
from parallax_docker.run_as import plan_user, resolve

log = logging.getLogger(__name__)

_MAX_ACCOUNTS_BYTES = 1024 * 1024


async def create_unprivileged(backend: Backend, spec: ContainerSpec, *, allow_root: bool) -> str:
    """``backend.create(spec)``, made again with numbers when its named user is root."""
    container_id = await backend.create(spec)
    planned = plan_user(spec.user, allow_root=allow_root)
    if allow_root or not planned.needs_lookup or spec.user is None:
        return container_id
    try:
        passwd = await backend.read_file(container_id, "/etc/passwd", _MAX_ACCOUNTS_BYTES)
        group = await backend.read_file(container_id, "/etc/group", _MAX_ACCOUNTS_BYTES)
    except BaseException:
        await _discard(backend, container_id)
        raise
    final = resolve(spec.user, _text(passwd), _text(group))
    if final.user is None:
        return container_id
    log.info(
        "the image's user is root or in the root group: running it as %s",
        final.user,
        extra={"image": spec.image},
    )
    await _discard(backend, container_id)
    return await backend.create(replace(spec, user=final.user))


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="replace")


async def _discard(backend: Backend, container_id: str) -> None:
    with contextlib.suppress(ParallaxError):
        await asyncio.shield(backend.remove(container_id, force=True))
