"""This machine's CPU, for timing tests that should not time the set-up they just did."""

from __future__ import annotations

import time


def _busy_and_total() -> tuple[int, int]:
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # without guest time, which is counted in user already
    return total - idle, total


def idle_share(window_s: float = 1.0) -> float:
    """The share of every core left idle over the next ``window_s`` seconds (0 to 1)."""
    busy0, total0 = _busy_and_total()
    time.sleep(window_s)
    busy1, total1 = _busy_and_total()
    elapsed = total1 - total0
    return 1.0 if elapsed <= 0 else 1.0 - (busy1 - busy0) / elapsed


def wait_until_quiet(idle_at_least: float = 0.7, timeout_s: float = 90) -> float:
    """Poll the CPU until a one-second window is at least ``idle_at_least`` idle; the last
    share seen. Gives up after ``timeout_s`` (the caller's timing then includes the noise)."""
    deadline = time.monotonic() + timeout_s
    share = idle_share()
    while share < idle_at_least and time.monotonic() < deadline:
        share = idle_share()
    return share
