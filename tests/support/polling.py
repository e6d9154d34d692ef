"""Bounded polling for tests: wait for a condition instead of sleeping a guessed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(
    fetch: Callable[[], T], until: Callable[[T], bool], timeout_s: float, interval_s: float = 0.02
) -> T:
    """Call ``fetch`` until ``until`` holds for its value; fail with the last value."""
    deadline = time.monotonic() + timeout_s
    value = fetch()
    while not until(value):
        if time.monotonic() > deadline:
            shown = repr(value)
            if len(shown) > 2000:
                shown = shown[:2000] + f"... ({len(shown)} characters)"
            raise AssertionError(f"not reached in {timeout_s}s; last value: {shown}")
        time.sleep(interval_s)
        value = fetch()
    return value
