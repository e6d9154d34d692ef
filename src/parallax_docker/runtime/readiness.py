"""Readiness: wait until a started container is really up, without Docker's health cadence.

An agent shows it is up in one of three ways, best first:
- its heartbeat: an image that beats one (``beats``) writes "ok" into the channel the platform
  mounted (runtime/heartbeat.py); it is read without running anything in the container;
- its image's HEALTHCHECK command, run here through ``exec`` right away and then on a short
  back-off (Docker 20.10 runs an image's first check only after a full interval); Docker's own
  checks keep running at the image's interval for later health;
- neither: the agent is ready once its process runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from parallax_docker.backends.base import Backend, ContainerState, ExecSpec, ImageInfo, MountSpec
from parallax_docker.backends.capabilities import Heartbeats, beats
from parallax_docker.errors import HealthCheckFailedError, ParallaxError
from parallax_docker.runtime.clock import parse_engine_time
from parallax_docker.runtime.spec import health_probe

_FIRST_DELAY_S = 0.02
_MAX_DELAY_S = 0.5
_PROBE_TIMEOUT_S = 10.0
# The kernel stamps a FIFO's writes with a coarse clock (a tick behind at most): a beat this
# close before the container's start counts as after it.
_CLOCK_SLACK_S = 0.1

# One look at a running container: None when it is ready, else why not (yet).
Check = Callable[[ContainerState], Awaitable[str | None]]


class Readiness:
    """How this runtime tells that an agent is up, per image."""

    def __init__(self, backend: Backend, heartbeats: Heartbeats | None) -> None:
        self._backend = backend
        self._heartbeats = heartbeats

    def beating(self, image: ImageInfo) -> bool:
        """The agent's heartbeat, not Docker's health check, tells its health."""
        return self._heartbeats is not None and beats(image)

    def attach(self, key: str, image: ImageInfo) -> tuple[MountSpec, ...] | None:
        """The heartbeat channel's mounts for the agent ``key``; None when it does not beat."""
        if self._heartbeats is None or not beats(image):
            return None
        return self._heartbeats.attach(key)

    def check(self, container_id: str, image: ImageInfo, key: str) -> Check:
        heartbeats = self._heartbeats
        if heartbeats is not None and beats(image):
            return _beat_check(heartbeats, key)
        probe = health_probe(image)
        if probe is not None:
            return _exec_check(self._backend, container_id, probe)
        return _running

    async def wait(
        self, container_id: str, image: ImageInfo, key: str, *, timeout_s: float
    ) -> ContainerState:
        """The container's state once ready; HealthCheckFailedError if it never gets there."""
        return await wait_ready(
            self._backend, container_id, self.check(container_id, image, key), timeout_s=timeout_s
        )

    async def passes(self, container_id: str, image: ImageInfo, key: str) -> bool:
        """One look (an agent Docker still calls starting)."""
        state = await self._backend.get(container_id)
        if state is None or not state.running:
            return False
        return await self.check(container_id, image, key)(state) is None


async def wait_ready(
    backend: Backend, container_id: str, check: Check, *, timeout_s: float
) -> ContainerState:
    deadline = time.monotonic() + timeout_s
    delay = _FIRST_DELAY_S
    while True:
        state = await backend.get(container_id)
        if state is None:
            raise HealthCheckFailedError("the agent's container disappeared while starting")
        if not state.running:
            reason = (
                "ran out of memory" if state.oom_killed else f"exited with code {state.exit_code}"
            )
            raise HealthCheckFailedError(f"the agent {reason} before it was ready")
        why = await check(state)
        if why is None:
            return state
        if time.monotonic() + delay > deadline:
            raise HealthCheckFailedError(
                f"the agent was not ready within {timeout_s:g}s: {why}",
                resolution="Check the agent's logs (GET /agents/{id}/logs is gone with the "
                "container; run the image by hand) or raise PARALLAX_READY_TIMEOUT_S.",
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, _MAX_DELAY_S)


async def _running(state: ContainerState) -> str | None:
    return None


def _exec_check(backend: Backend, container_id: str, probe: tuple[str, ...]) -> Check:
    async def check(state: ContainerState) -> str | None:
        try:
            result = await backend.exec(
                container_id, ExecSpec(argv=probe), timeout_s=_PROBE_TIMEOUT_S
            )
        except (ParallaxError, TimeoutError):
            # The container may be exiting; the next state read tells.
            return "its health check could not run"
        return None if result.exit_code == 0 else "its health check did not pass"

    return check


def _beat_check(heartbeats: Heartbeats, key: str) -> Check:
    last_report: list[str] = []

    async def check(state: ContainerState) -> str | None:
        beat = heartbeats.read(key)
        if beat is None:
            return "it has no heartbeat channel"
        if beat.report is not None:
            last_report[:] = [beat.report]
        started = parse_engine_time(state.started_at) or 0.0
        if last_report == ["ok"] and beat.at >= started - _CLOCK_SLACK_S:
            return None
        if last_report and last_report != ["ok"]:
            return f"its heartbeat says: {last_report[0]}"
        return "no heartbeat yet"

    return check
