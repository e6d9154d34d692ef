"""How much memory the engine's host can still give: MemAvailable from /proc/meminfo.

MemAvailable is the kernel's estimate of what can be allocated without swapping: free memory
plus the page cache and reclaimable slab it could drop. The memory agents already use is not in
it, so admission only has to keep room for what they may still grow by (runtime/admission.py).
Reading it is a few microseconds: one small file.
"""

from __future__ import annotations

from pathlib import Path

MEMINFO = Path("/proc/meminfo")


def available(meminfo: Path = MEMINFO) -> int | None:
    """MemAvailable in bytes; None where the file or the line is missing."""
    try:
        with meminfo.open("rb") as handle:
            for line in handle:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
