"""The files, diff and preview calls, without I/O (``Client`` and ``AsyncClient`` share them).

Uploads and downloads stream: a body may be bytes, a file object or an iterator of chunks, and a
download is read chunk by chunk; nothing needs the whole file in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from parallax_docker.client.calls import Call, _segment
from parallax_docker.errors import ValidationError

TAR = "application/x-tar"
BINARY = "application/octet-stream"
DOWNLOAD_CHUNK = 256 * 1024


def files_path(agent_id: str) -> str:
    return f"/agents/{_segment(agent_id)}/files"


def upload_headers(archive: bool) -> dict[str, str]:
    return {"content-type": TAR if archive else BINARY}


def download(agent_id: str, path: str, max_bytes: int | None = None) -> Call:
    params = [("path", path)] + ([] if max_bytes is None else [("maxBytes", str(int(max_bytes)))])
    return Call("GET", files_path(agent_id), params=params)


def list_files(agent_id: str, path: str, limit: int | None) -> Call:
    params = [("path", path)] + ([] if limit is None else [("limit", str(int(limit)))])
    return Call("GET", files_path(agent_id) + "/list", params=params)


def remove(agent_id: str, path: str, recursive: bool) -> Call:
    params = [("path", path)] + ([("recursive", "true")] if recursive else [])
    return Call("DELETE", files_path(agent_id), params=params)


def diff(agent_id: str) -> Call:
    return Call("GET", f"/agents/{_segment(agent_id)}/diff")


def open_preview(agent_id: str, port: int) -> Call:
    if not 1 <= int(port) <= 65535:
        raise ValidationError("a port is a number from 1 to 65535")
    return Call("POST", f"/agents/{_segment(agent_id)}/previews", json={"port": int(port)})


@dataclass(frozen=True)
class Download:
    """What a download found: ``"file"`` (its bytes) or ``"dir"`` (a tar of its contents)."""

    kind: str
    path: str
