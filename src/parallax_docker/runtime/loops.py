"""Supervised background work: loops that survive a bad pass, and tasks that end with their owner.

``Loop`` runs one ``step`` over and over; the step returns how long to wait before the next run.
A step that fails is logged by its code (never its text: it may carry request values) and the
loop waits with a doubling back-off before it tries again, so a long engine outage costs little.
``wake()`` cuts the current wait short. ``Tasks`` keeps fire-and-forget tasks so that ``stop``
can cancel and await every one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from parallax_docker.errors import ParallaxError

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[float]]


def describe(exc: BaseException) -> str:
    """An error as it may be logged: its code and message, or just its class."""
    return f"{exc.code}: {exc.message}" if isinstance(exc, ParallaxError) else type(exc).__name__


class Loop:
    def __init__(
        self,
        name: str,
        step: Step,
        *,
        first_backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.name = name
        self._step = step
        self._first_backoff_s = first_backoff_s
        self._max_backoff_s = max_backoff_s
        self._on_error = on_error
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._backoff = first_backoff_s
        self.failures = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"parallax-{self.name}")

    def wake(self) -> None:
        self._wake.set()

    def reset_backoff(self) -> None:
        """The step is doing well (a long-running step says so once it is under way)."""
        self._backoff = self._first_backoff_s

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        self._backoff = self._first_backoff_s
        while True:
            try:
                delay = await self._step()
                self._backoff = self._first_backoff_s
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one bad pass must not end the loop
                self.failures += 1
                if self._on_error is not None:
                    self._on_error(exc)
                else:
                    log.warning("%s pass failed: %s", self.name, describe(exc))
                delay = self._backoff
                self._backoff = min(self._backoff * 2, self._max_backoff_s)
            await self._sleep(delay)

    async def _sleep(self, delay: float) -> None:
        if delay <= 0:
            await asyncio.sleep(0)
            return
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()


class Tasks:
    """Tasks started on behalf of an owner, cancelled and awaited when it stops."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, job: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(job, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("%s failed: %s", task.get_name(), describe(task.exception()))  # type: ignore[arg-type]

    async def wait(self) -> None:
        """Until every task started so far has ended."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
