"""Files in agents: ``GET|PUT|DELETE /agents/{id}/files?path=``, ``GET /agents/{id}/files/list``.

Bodies stream both ways: an upload goes from the request into the agent as it arrives (the body
limit does not apply here; PARALLAX_MAX_UPLOAD_BYTES does), a download from the agent to the
response. docs/files.md has the rules.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from parallax_docker.api.deps import RuntimeDep
from parallax_docker.errors import ValidationError
from parallax_docker.file_models import (
    DiffResponse,
    FileEntryModel,
    FileListResponse,
    FileWriteResponse,
)
from parallax_docker.models import ErrorResponse
from parallax_docker.runtime.paths import PATH_MAX

router = APIRouter(prefix="/agents", tags=["files"])
_UPLOAD = re.compile(r"^/agents/[^/]+/files/?\Z")

TAR = "application/x-tar"
_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse} for status in (403, 404, 409, 413, 422, 502, 503, 507)
}
PathQuery = Annotated[
    str,
    Query(
        max_length=PATH_MAX,
        description="Absolute (/workspace/..., ~/...) or relative to /workspace",
    ),
]


@router.get(
    "/{agent_id}/files",
    responses={
        **_ERRORS,
        200: {
            "description": "A file's bytes, or a folder's contents as a tar",
            "content": {"application/octet-stream": {}, TAR: {}},
        },
    },
    summary="Download a file, or a folder as a tar of its contents",
)
async def download(
    agent_id: str,
    runtime: RuntimeDep,
    path: PathQuery = "",
    max_bytes: Annotated[
        int | None,
        Query(
            alias="maxBytes",
            ge=1,
            description="Refuse (422 DOWNLOAD_TOO_LARGE) rather than send more than this",
        ),
    ] = None,
) -> Response:
    clean, found = await runtime.files.read(agent_id, path, max_bytes)
    headers = {"x-parallax-path": quote(clean, safe="/~"), "x-parallax-kind": found.kind}
    name = clean.rsplit("/", 1)[-1] or "workspace"
    if found.kind == "file":
        headers["content-length"] = str(found.size)
        headers["content-disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
        media = "application/octet-stream"
    else:
        headers["content-disposition"] = f"attachment; filename*=UTF-8''{quote(name + '.tar')}"
        media = TAR
    return StreamingResponse(_stream(found.chunks), media_type=media, headers=headers)


@router.get(
    "/{agent_id}/files/list",
    response_model=FileListResponse,
    responses=_ERRORS,
    summary="List a folder: names, types, sizes, modes and times",
)
async def list_files(
    agent_id: str,
    runtime: RuntimeDep,
    path: PathQuery = "",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> FileListResponse:
    listing = await runtime.files.list(agent_id, path, limit)
    base = listing.path.rstrip("/")
    entries = [
        FileEntryModel(
            name=entry.name,
            path=f"{base}/{entry.name}",
            type=entry.kind,
            size=entry.size,
            mode=f"{entry.mode:o}",
            mtime=entry.mtime,
            target=entry.target,
        )
        for entry in listing.entries
    ]
    return FileListResponse(
        path=listing.path, entries=entries, count=len(entries), truncated=listing.truncated
    )


@router.put(
    "/{agent_id}/files",
    response_model=FileWriteResponse,
    responses=_ERRORS,
    summary="Upload a file, or (Content-Type application/x-tar) unpack a tar into a folder",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                TAR: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def upload(
    agent_id: str, request: Request, runtime: RuntimeDep, path: PathQuery = ""
) -> FileWriteResponse:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    archive = media == TAR
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise ValidationError("Content-Length must be a number of bytes")
    clean, received = await runtime.files.write(
        agent_id,
        path,
        request.stream(),
        archive=archive,
        declared_size=int(declared) if declared is not None else None,
    )
    return FileWriteResponse(path=clean, bytes=received, archive=archive)


@router.delete(
    "/{agent_id}/files",
    status_code=204,
    responses=_ERRORS,
    summary="Remove a file, a link, or (recursive=true for a non-empty one) a folder",
)
async def remove(
    agent_id: str, runtime: RuntimeDep, path: PathQuery = "", recursive: bool = False
) -> Response:
    await runtime.files.remove(agent_id, path, recursive=recursive)
    return Response(status_code=204)


@router.get(
    "/{agent_id}/diff",
    response_model=DiffResponse,
    response_model_exclude_none=True,
    responses=_ERRORS,
    summary="What the agent changed in its workspace since it was spawned",
    description=(
        "In a git work tree: the commits made since spawn and a unified diff of the work tree "
        "(untracked files included) against the HEAD at spawn. Otherwise: the files added, "
        "modified and removed since the snapshot taken at spawn."
    ),
)
async def diff(agent_id: str, runtime: RuntimeDep) -> DiffResponse:
    return await runtime.workspace.diff(agent_id)


async def _stream(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    # A failure after the headers went out propagates: the connection is cut without the
    # body's end, which is the one signal left to the client.
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        closing = getattr(chunks, "aclose", None)
        if closing is not None:
            await closing()


def is_upload(method: str, path: str) -> bool:
    """The requests whose body the upload route streams itself (app.py's body limit skips)."""
    return method == "PUT" and _UPLOAD.match(path) is not None
