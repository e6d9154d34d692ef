"""Mounts an engine of a test leaves behind under its own folder.

A dockerd bind-mounts its data root onto itself (and mounts layers and network namespaces
under its roots); a daemon that is killed, or that shuts down while a container still runs,
leaves them mounted. A folder with a mount in it cannot be removed (EBUSY), and pytest's own
clean-up of old base temp folders then fails the whole run, so every private engine's folder is
unmounted before it is removed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root``, deepest first (the order they can be unmounted in)."""
    prefix = str(root).rstrip("/")
    points = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4] == prefix or line.split()[4].startswith(prefix + "/")
    ]
    return sorted(points, key=len, reverse=True)


def unmount_under(root: Path) -> None:
    """Detach every mount at or below ``root`` (lazily: a busy one goes when its last user does)."""
    for point in mounts_under(root):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
