"""Files only the service reads (keys, budgets, counts, journal intents, snapshots): written
whole under a hidden temporary name, owner-only (0600), then renamed into place, so that a
reader or a crash never sees half of one. The caller makes the (0700) folder.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    os.replace(temp, path)
