"""The supervised loop: a failing pass is logged and retried with a back-off; wake and stop."""

from __future__ import annotations

import asyncio
import itertools

from parallax_docker.errors import EngineError
from parallax_docker.runtime.loops import Loop, Tasks


async def test_a_loop_survives_failing_passes_and_backs_off() -> None:
    times: list[float] = []
    loop_time = asyncio.get_running_loop().time

    async def step() -> float:
        times.append(loop_time())
        if len(times) < 4:
            raise EngineError("engine busy")
        return 60.0

    seen: list[BaseException] = []
    loop = Loop("test", step, first_backoff_s=0.01, max_backoff_s=0.04, on_error=seen.append)
    loop.start()
    async with asyncio.timeout(5):
        while len(times) < 4:
            await asyncio.sleep(0.005)
    await loop.stop()
    assert len(seen) == 3 and loop.failures == 3
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # 0.01, 0.02, 0.04: each wait at least the back-off of its failure.
    assert gaps[0] >= 0.009 and gaps[1] >= 0.019 and gaps[2] >= 0.039


async def test_wake_cuts_the_wait_short_and_stop_ends_the_loop() -> None:
    runs = 0

    async def step() -> float:
        nonlocal runs
        runs += 1
        return 3600.0

    loop = Loop("test", step)
    loop.start()
    async with asyncio.timeout(5):
        while runs < 1:
            await asyncio.sleep(0.005)
        loop.wake()
        while runs < 2:
            await asyncio.sleep(0.005)
    await loop.stop()
    assert not loop.running


async def test_tasks_are_cancelled_and_awaited_on_stop() -> None:
    tasks = Tasks()
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = tasks.spawn(forever(), name="forever")
    await started.wait()
    await tasks.stop()
    assert task.cancelled() and len(tasks) == 0
