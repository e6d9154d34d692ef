"""Showing build progress as plain lines and as rich bars."""

from __future__ import annotations

import io
from itertools import count

from rich.console import Console

from parallax_docker.images.progress import PlainReporter, ProgressEvent, RichReporter


def plain(verbose: bool = False) -> tuple[PlainReporter, io.StringIO]:
    out = io.StringIO()
    ticks = count()
    return PlainReporter(out, verbose=verbose, clock=lambda: float(next(ticks))), out


def test_plain_prints_one_line_per_step() -> None:
    report, out = plain()
    report(ProgressEvent("claude", "start", "building parallax/agent-claude:latest"))
    report(ProgressEvent("claude", "step", "RUN npm-install-cli claude", 6, 11))
    report(ProgressEvent("claude", "line", "added 2 packages"))
    report(ProgressEvent("claude", "done", "built in 20s, 712.3 MB"))
    lines = out.getvalue().splitlines()
    assert lines == [
        "    1.0s [claude] building parallax/agent-claude:latest",
        "    2.0s [claude] step 6/11: RUN npm-install-cli claude",
        "    3.0s [claude] built in 20s, 712.3 MB",
    ]


def test_plain_verbose_prints_output_lines_too() -> None:
    report, out = plain(verbose=True)
    report(ProgressEvent("codex", "line", "added 2 packages"))
    assert out.getvalue().endswith("[codex]   | added 2 packages\n")


def test_plain_shows_the_last_output_of_a_failed_image() -> None:
    report, out = plain()
    for n in range(50):
        report(ProgressEvent("aider", "line", f"pip line {n}"))
    report(ProgressEvent("gemini", "line", "unrelated"))
    report(ProgressEvent("aider", "failed", "building failed: returned 1"))
    text = out.getvalue()
    assert "[aider] FAILED: building failed: returned 1" in text
    assert "pip line 49" in text and "pip line 10" in text
    assert "pip line 9\n" not in text
    assert "unrelated" not in text


def test_plain_squeezes_long_instructions_onto_one_line() -> None:
    report, out = plain()
    report(ProgressEvent("base", "step", "RUN set -eux; \\\n   apt-get update " + "x" * 300, 2, 9))
    (line,) = out.getvalue().splitlines()
    assert "\n" not in line and line.endswith("…")


def test_rich_reporter_shows_one_bar_per_image_with_its_step() -> None:
    console = Console(file=io.StringIO(), width=140, force_terminal=False)
    report = RichReporter(console)
    with report.live():
        report(ProgressEvent("base", "queued"))
        report(ProgressEvent("claude", "queued"))
        report(ProgressEvent("base", "start", "building base"))
        report(ProgressEvent("base", "step", "RUN apt-get install", 3, 9))
        report(ProgressEvent("base", "done", "built in 24s"))
        report(ProgressEvent("claude", "start", "building claude"))
        report(ProgressEvent("claude", "line", "npm ERR! 403"))
        report(ProgressEvent("claude", "failed", "building failed"))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "base" in text and "built in 24s" in text
    assert "claude failed: building failed" in text
    assert "npm ERR! 403" in text
