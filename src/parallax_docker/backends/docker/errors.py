"""Engine errors -> project errors, decided in this one place.

The kind of error comes from the HTTP status the engine answered and from what the call was
about (the ``subject``), not from matching the engine's free-text messages, which change between
engine versions. The engine's message is kept out of client-facing text because it can echo
request values; it goes to the debug log instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal, NoReturn

import aiodocker
import aiohttp

from parallax_docker.errors import (
    AgentNotFoundError,
    ConflictError,
    EngineError,
    ImageNotFoundError,
    NetworkError,
    ParallaxError,
    SocketError,
    ValidationError,
)

log = logging.getLogger(__name__)

Subject = Literal["container", "image", "network", "volume", "engine", "exec"]

# aiodocker reports a connection failure as a DockerError with this pseudo status.
_CONNECT_FAILED = 900


def translate(exc: BaseException, subject: Subject, what: str = "") -> ParallaxError:
    """Map one engine-side failure to the project's error for it."""
    if isinstance(exc, ParallaxError):
        return exc
    if isinstance(exc, (aiohttp.ClientConnectionError, ConnectionError, FileNotFoundError)):
        return SocketError("cannot connect to the Docker engine")
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return SocketError(
            "the Docker engine did not answer in time",
            resolution="Check that dockerd is healthy; raise PARALLAX_ENGINE_TIMEOUT_S if busy.",
        )
    if isinstance(exc, aiodocker.DockerError):
        status = exc.status
        log.debug("engine error on %s %s: %s %s", subject, what, status, exc.message)
        if status == _CONNECT_FAILED:
            return SocketError("cannot connect to the Docker engine")
        if status == 404:
            return _not_found(subject, what)
        if status == 409:
            if subject == "container":
                return ConflictError(
                    f"container {what} conflicts with an existing one"
                    if what
                    else "a container with that name already exists"
                )
            return ConflictError(f"the engine reports a conflict on {subject} {what}".strip())
        if status == 400:
            return ValidationError(
                f"the Docker engine refused the {subject} configuration",
                resolution="Check mounts, limits and the command; the service log has details.",
            )
        if status >= 500:
            return EngineError(f"the Docker engine failed on {subject} {what}".strip())
    return EngineError(f"unexpected failure talking to the Docker engine ({type(exc).__name__})")


def _not_found(subject: Subject, what: str) -> ParallaxError:
    if subject == "image":
        return ImageNotFoundError(f"image {what} is not built" if what else "image not found")
    if subject == "network":
        return NetworkError(f"network {what} does not exist")
    if subject == "container":
        return AgentNotFoundError(f"container {what} does not exist")
    return EngineError(f"{subject} {what} not found".strip())


def raise_translated(exc: BaseException, subject: Subject, what: str = "") -> NoReturn:
    raise translate(exc, subject, what) from exc


_ENGINE_ERRORS = (aiodocker.DockerError, aiohttp.ClientError, OSError, asyncio.TimeoutError)


@asynccontextmanager
async def engine_call(subject: Subject, what: str = "") -> AsyncIterator[None]:
    """Wrap one engine interaction so that only project errors leave it."""
    try:
        yield
    except _ENGINE_ERRORS as exc:
        raise_translated(exc, subject, what)
