"""One small file out of a container's filesystem (created or running), through the archive API.

The engine answers with a tar of the path; only a regular file no larger than asked is returned.
"""

from __future__ import annotations

import io
import tarfile

# The tar around the file: its header block, padding and the two end blocks.
_TAR_OVERHEAD = 4096


def regular_file(archive_bytes: bytes, max_bytes: int) -> bytes | None:
    """The one regular file in ``archive_bytes`` (a tar the engine made), or None."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive_bytes)) as archive:
            member = archive.next()
            if member is None or not member.isreg() or member.size > max_bytes:
                return None
            extracted = archive.extractfile(member)
            return extracted.read() if extracted is not None else None
    except tarfile.TarError:
        return None


def archive_budget(max_bytes: int) -> int:
    return max_bytes + _TAR_OVERHEAD
