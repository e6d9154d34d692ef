"""Showing a build: rich progress bars (one per image, with its current step) or plain lines.

The builder emits ProgressEvents; a reporter shows them. Plain mode prints one line per step
and per state change, for CI logs; both keep each image's last output lines and print them when
that image fails, so a failing step is readable without a rerun.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

EventKind = Literal["queued", "start", "step", "line", "note", "done", "skipped", "failed"]
TAIL_LINES = 40
_MAX_TEXT = 110


@dataclass(frozen=True)
class ProgressEvent:
    """Something happened to one image (``image`` is its type, or ``rootfs``)."""

    image: str
    kind: EventKind
    text: str = ""
    step: int = 0
    total: int = 0


Reporter = Callable[[ProgressEvent], None]


def short(text: str, limit: int = _MAX_TEXT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Tails:
    def __init__(self) -> None:
        self._lines: dict[str, deque[str]] = {}

    def add(self, image: str, line: str) -> None:
        self._lines.setdefault(image, deque(maxlen=TAIL_LINES)).append(line)

    def get(self, image: str) -> list[str]:
        return list(self._lines.get(image, ()))


class PlainReporter:
    """``[claude] step 3/9: RUN ...`` lines; with ``verbose`` every output line too."""

    def __init__(
        self,
        stream: TextIO,
        *,
        verbose: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._verbose = verbose
        self._clock = clock
        self._started = clock()
        self._tails = _Tails()

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "line":
            self._tails.add(event.image, event.text)
            if self._verbose:
                self._print(event.image, f"  | {event.text}")
            return
        if event.kind == "queued":
            return
        if event.kind == "step":
            self._print(event.image, f"step {event.step}/{event.total}: {short(event.text)}")
        elif event.kind == "failed":
            self._print(event.image, f"FAILED: {event.text}")
            for line in self._tails.get(event.image):
                self._print(event.image, f"  | {line}")
        else:
            self._print(event.image, event.text)

    def _print(self, image: str, text: str) -> None:
        elapsed = self._clock() - self._started
        self._stream.write(f"{elapsed:7.1f}s [{image}] {text}\n")
        self._stream.flush()


class RichReporter:
    """One progress bar per image, advancing with the build's steps."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress = Progress(
            SpinnerColumn(finished_text="•"),
            TextColumn("[bold]{task.fields[image]:<7}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[detail]}"),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._tails = _Tails()

    @contextmanager
    def live(self) -> Iterator[RichReporter]:
        with self._progress:
            yield self

    def _task(self, image: str) -> TaskID:
        if image not in self._tasks:
            # Steps are unknown until the engine's first "Step 1/N"; None shows a pulse.
            self._tasks[image] = self._progress.add_task(
                image, total=None, start=False, image=image, detail="[dim]queued"
            )
        return self._tasks[image]

    def __call__(self, event: ProgressEvent) -> None:
        task = self._task(event.image)
        kind = event.kind
        if kind == "line":
            self._tails.add(event.image, event.text)
            return
        if kind == "queued":
            return
        if kind == "start":
            self._progress.start_task(task)
            self._progress.update(task, detail=escape(short(event.text, 70)))
        elif kind == "step":
            self._progress.update(
                task,
                total=event.total,
                completed=event.step - 1,
                detail=escape(short(event.text, 70)),
            )
        elif kind == "note":
            self._progress.start_task(task)
            self._progress.update(task, detail=escape(short(event.text, 70)))
        elif kind in ("done", "skipped"):
            total = self._progress.tasks[self._index(task)].total or 1
            self._progress.update(
                task, total=total, completed=total, detail=f"[green]{escape(event.text)}"
            )
            self._progress.stop_task(task)
        elif kind == "failed":
            self._progress.update(task, detail=f"[red]failed: {escape(short(event.text, 60))}")
            self._progress.stop_task(task)
            tail = self._tails.get(event.image)
            self._console.print(f"[red bold]{event.image} failed:[/] {escape(event.text)}")
            for line in tail:
                self._console.print(f"[dim]{event.image} |[/] {escape(line)}", highlight=False)

    def _index(self, task: TaskID) -> int:
        return next(i for i, t in enumerate(self._progress.tasks) if t.id == task)
