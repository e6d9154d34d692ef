"""Readiness: wait until a started container is really up, without Docker's health cadence.

Docker 20.10 runs an image's first HEALTHCHECK only after a full interval. Instead the image's own
check command is run here right away and then on a short back-off, so an agent is ready as soon
as it is really up; Docker's own checks keep running at the image's interval for later health.
"""

from __future__ import annotations

import asyncio
import time

from parallax_docker.backends.base import Backend, ContainerState, ExecSpec
from parallax_docker.errors import HealthCheckFailedError, ParallaxError

_FIRST_DELAY_S = 0.02
_MAX_DELAY_S = 0.5
_PROBE_TIMEOUT_S = 10.0


async def wait_ready(
    backend: Backend, container_id: str, probe: tuple[str, ...] | None, *, timeout_s: float
) -> ContainerState:
    """Return the container's state once ready; HealthCheckFailedError if it never gets there."""
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
        if probe is None:
            return state
        if await probe_passes(backend, container_id, probe):
            return state
        if time.monotonic() + delay > deadline:
            raise HealthCheckFailedError(
                f"the agent's health check did not pass within {timeout_s:g}s",
                resolution="Check the agent's logs (GET /agents/{id}/logs is gone with the "
                "container; run the image by hand) or raise PARALLAX_READY_TIMEOUT_S.",
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, _MAX_DELAY_S)


async def probe_passes(backend: Backend, container_id: str, probe: tuple[str, ...]) -> bool:
    """Run the readiness probe once; False on any failure to run it."""
    try:
        result = await backend.exec(container_id, ExecSpec(argv=probe), timeout_s=_PROBE_TIMEOUT_S)
    except (ParallaxError, TimeoutError):
        # The container may be exiting; the next state read tells.
        return False
    return result.exit_code == 0
