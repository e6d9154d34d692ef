"""Engine errors -> project errors, decided in this one place.

The kind of error comes from the HTTP status the engine answered and from what the call was
about (the ``subject`` and the ``action`` on it), not from matching the engine's free-text
messages, which change between engine versions. Some answers mean the action is already done
(304 on a stop: the container was stopped; 404 on a removal: nothing is left); ``translate``
returns None for them and ``engine_call`` lets the call succeed. The engine's message is kept
out of client-facing text because it can echo request values; it goes to the debug log.
The one exception is image building, whose messages are the user's own build log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Literal

import aiohttp

from parallax_docker.backends.docker.engine import EngineAPIError
from parallax_docker.errors import (
    AgentNotFoundError,
    AgentStateError,
    ConflictError,
    EngineError,
    ImageNotFoundError,
    InsecureSpawnError,
    NetworkError,
    NotFoundError,
    ParallaxError,
    SocketError,
    ValidationError,
    VolumeInUseError,
)

log = logging.getLogger(__name__)

# service, task, node and secret: a Swarm manager's objects (backends/swarm/).
Subject = Literal[
    "container", "image", "network", "volume", "engine", "exec", "service", "task", "node", "secret"
]
Action = Literal[
    "create",
    "start",
    "stop",
    "restart",
    "kill",
    "remove",
    "inspect",
    "list",
    "update",
    "rename",
    "connect",
    "stat",
    "logs",
    "stats",
    "events",
    "build",
    "pull",
    "import",
    "resize",
    "push",
    "tag",
]

# (subject, action, status) answers that mean the action's end is already reached.
_DONE: frozenset[tuple[str, str, int]] = frozenset(
    {
        ("container", "start", 304),  # already running
        ("container", "stop", 304),  # already stopped
        ("container", "kill", 409),  # not running: nothing to signal
        ("container", "remove", 404),  # gone already
        ("container", "remove", 409),  # a removal is already under way
        ("volume", "remove", 404),
        ("network", "remove", 404),
        ("service", "remove", 404),
        ("secret", "remove", 404),
    }
)

_NOT_RUNNING_RESOLUTION = "Restart the agent (POST /agents/{id}/restart) or spawn a new one."


def translate(
    exc: BaseException, subject: Subject, action: Action, what: str = ""
) -> ParallaxError | None:
    """The project error for one engine-side failure; None when it means the action is done."""
    if isinstance(exc, ParallaxError):
        return exc
    if isinstance(exc, EngineAPIError):
        log.debug(
            "engine answered %s to %s %s %s: %s", exc.status, action, subject, what, exc.message
        )
        if (subject, action, exc.status) in _DONE:
            return None
        return _by_status(exc, subject, action, what)
    if isinstance(exc, (aiohttp.ClientConnectionError, ConnectionError, FileNotFoundError)):
        return SocketError("cannot connect to the Docker engine")
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return SocketError(
            "the Docker engine did not answer in time",
            resolution="Check that dockerd is healthy; raise PARALLAX_ENGINE_TIMEOUT_S if busy.",
        )
    if isinstance(exc, (ValueError, aiohttp.ClientPayloadError)):
        log.debug("unreadable answer to %s %s %s: %s", action, subject, what, exc)
        return EngineError(f"the Docker engine sent an unreadable answer to {action} {subject}")
    return EngineError(f"unexpected failure talking to the Docker engine ({type(exc).__name__})")


def _by_status(exc: EngineAPIError, subject: Subject, action: Action, what: str) -> ParallaxError:
    status = exc.status
    named = f"{subject} {what}".strip()
    if (
        subject == "image"
        and action in ("build", "pull", "import", "push")
        and status in (400, 500)
    ):
        # The engine refused the build context, the Dockerfile or the reference: about the
        # user's own build, never a secret, and they need it to fix the build.
        text = exc.message if action != "build" else f"building {what} failed: {exc.message}"
        return build_failure(action, what, text)
    if status == 503 and subject in _SWARM_SUBJECTS:
        # A Swarm object asked of an engine that is no manager, or of a swarm without quorum.
        return EngineError(
            "the engine is not a reachable Swarm manager",
            resolution="Point DOCKER_SOCKET at a manager node's engine; check `docker node ls`.",
        )
    if status == 404:
        return _not_found(subject, action, what)
    if status == 409:
        return _conflict(subject, action, what)
    if status == 403 and subject == "network" and action == "remove":
        return ConflictError(
            f"network {what} still has containers attached",
            resolution="Remove or disconnect its containers first.",
        )
    if status == 400:
        return ValidationError(
            f"the Docker engine refused the {subject} configuration",
            resolution="Check mounts, limits and the command; the service log has details.",
        )
    if status >= 500:
        return EngineError(f"the Docker engine failed to {action} {named}".strip())
    return EngineError(f"the Docker engine refused to {action} {named} ({status})")


def _not_found(subject: Subject, action: Action, what: str) -> ParallaxError:
    if subject == "image":
        return ImageNotFoundError(f"image {what} is not built" if what else "image not found")
    if subject == "network":
        return NetworkError(f"network {what} does not exist")
    if subject in ("container", "service") or (subject == "exec" and action == "create"):
        # Creating an exec names the container: a 404 says the container is gone. A Swarm
        # service is an agent's container there.
        return AgentNotFoundError(f"{subject} {what} does not exist")
    if subject in ("volume", "secret", "node"):
        return NotFoundError(
            f"{subject} {what} does not exist", resolution=f"List {subject}s to find its name."
        )
    return EngineError(f"{subject} {what} not found".strip())


def _conflict(subject: Subject, action: Action, what: str) -> ParallaxError:
    if subject == "volume" and action == "remove":
        return VolumeInUseError(f"volume {what} is in use by a container")
    if subject == "exec" and action in ("create", "start"):
        return AgentStateError(
            "the agent's container is not running", resolution=_NOT_RUNNING_RESOLUTION
        )
    if subject in ("container", "service", "secret") and action in ("create", "rename"):
        return ConflictError(
            f"container {what} conflicts with an existing one"
            if what
            else "a container with that name already exists"
        )
    if subject == "container" and action in ("update", "restart", "start"):
        return AgentStateError(f"container {what} cannot {action} in its current state")
    return ConflictError(f"the engine reports a conflict on {subject} {what}".strip())


_SWARM_SUBJECTS = frozenset({"service", "task", "node", "secret"})
_RUN_FAILED = re.compile(r"The command '.*' returned a non-zero code: (\d+)", re.DOTALL)


def build_failure(action: Action, what: str, message: str) -> EngineError:
    """A build, pull or import that the engine reported failed, in the engine's own words."""
    text = message.strip()
    if action == "pull":
        return EngineError(
            f"cannot pull {what}: {text}",
            resolution="Check the registry is reachable, or let the builder bootstrap Debian "
            "with debootstrap.",
        )
    if action == "import":
        return EngineError(f"importing {what} failed: {text}")
    if action == "push":
        return EngineError(
            f"cannot push {what}: {text}",
            resolution="Check that the cluster's registry (PARALLAX_SWARM_REGISTRY) is up and "
            "that the manager's engine trusts it.",
        )
    # The classic builder repeats the whole RUN command here; the step line already showed it.
    failed_run = _RUN_FAILED.fullmatch(text)
    if failed_run:
        text = f"the step exited with code {failed_run.group(1)}"
    return EngineError(
        text or f"building {what} failed",
        resolution="Read the build output above; fix the step and run it again.",
    )


def stream_failure(message: Mapping[str, Any]) -> str | None:
    """The failure a build, pull or import stream reports in one of its messages, if any."""
    if not (message.get("error") or message.get("errorDetail")):
        return None
    detail = message.get("errorDetail")
    detail_text = detail.get("message") if isinstance(detail, Mapping) else None
    return str(detail_text or message.get("error") or "the build failed")


def warnings_failure(answer: Mapping[str, Any]) -> InsecureSpawnError | None:
    """Fail closed: the engine drops limits it cannot enforce and says so only in Warnings."""
    warnings = [str(w) for w in answer.get("Warnings") or () if w]
    if not warnings:
        return None
    return InsecureSpawnError(
        "the Docker engine could not apply every limit: " + "; ".join(warnings)[:500]
    )


_ENGINE_ERRORS = (
    EngineAPIError,
    aiohttp.ClientError,
    OSError,
    asyncio.TimeoutError,
    json.JSONDecodeError,
)


class engine_call:
    """Wrap one engine interaction so that only project errors leave it.

    A class named as a function: it reads as a call, ``async with engine_call(...)``.
    """

    def __init__(self, subject: Subject, action: Action, what: str = "") -> None:
        self.subject = subject
        self.action = action
        self.what = what

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None or not isinstance(exc, _ENGINE_ERRORS):
            return
        error = translate(exc, self.subject, self.action, self.what)
        if error is None:
            # Only idempotent_call may take an answer as "already done".
            error = EngineError(f"unexpected answer to {self.action} {self.subject}")
        raise error from exc


class idempotent_call(engine_call):
    """As ``engine_call``, but an answer meaning the action is already done (a stopped
    container's stop, a gone container's removal) ends the block quietly: use it around calls
    whose result is not needed afterwards."""

    async def __aexit__(  # type: ignore[override]
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is None or not isinstance(exc, _ENGINE_ERRORS):
            return False
        error = translate(exc, self.subject, self.action, self.what)
        if error is None:
            return True
        raise error from exc
