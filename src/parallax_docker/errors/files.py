"""Errors of files in agents, workspace diffs and previews (docs/files.md)."""

from __future__ import annotations

from parallax_docker.errors.tree import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PayloadTooLargeError,
    ServerError,
    ValidationError,
)


class PathForbiddenError(ForbiddenError):
    """A path outside the agent's workspace and home, or climbing with '..' or a link."""

    code = "PATH_FORBIDDEN"
    default_resolution = "Name a path under /workspace or the agent's home (~)."


class FileTypeForbiddenError(ForbiddenError):
    code = "FILE_TYPE_FORBIDDEN"
    default_resolution = "Only regular files and folders are read: not devices, FIFOs or sockets."


class FilePermissionError(ForbiddenError):
    """The agent's own user may not read or write there (files are handled as that user)."""

    code = "FILE_PERMISSION_DENIED"
    default_resolution = "Choose a path the agent's user can read and write."


class PathNotFoundError(NotFoundError):
    code = "FILE_NOT_FOUND"
    default_resolution = "List the folder (GET /agents/{id}/files/list?path=) to find the name."


class PathConflictError(ConflictError):
    code = "PATH_CONFLICT"
    default_resolution = "Remove what is in the way first (DELETE /agents/{id}/files?path=)."


class DirectoryNotEmptyError(ConflictError):
    code = "DIRECTORY_NOT_EMPTY"
    default_resolution = "Add recursive=true to remove a folder with everything in it."


class UploadTooLargeError(PayloadTooLargeError):
    code = "UPLOAD_TOO_LARGE"
    default_resolution = "Send less, in several uploads, or raise PARALLAX_MAX_UPLOAD_BYTES."


class DownloadTooLargeError(ValidationError):
    code = "DOWNLOAD_TOO_LARGE"
    default_resolution = "Download a smaller folder, or raise PARALLAX_MAX_DOWNLOAD_BYTES."


class BadArchiveError(ValidationError):
    code = "BAD_ARCHIVE"
    default_resolution = (
        "Send a plain (uncompressed) tar whose members stay inside it: relative names without "
        "'..', links that lead nowhere outside it, no devices or FIFOs."
    )


class FilesUnavailableError(ValidationError):
    """The platform offers no file access, or the agent's image lacks what it needs."""

    code = "FILES_UNAVAILABLE"
    default_resolution = "Use an image with /bin/sh and tar (every project image has them)."


class PreviewUnavailableError(ConflictError):
    """The agent has no network address the service can reach (network 'none')."""

    code = "PREVIEW_UNAVAILABLE"
    default_resolution = "Spawn the agent on a network (not 'none') to open its ports."


class PreviewTicketError(ForbiddenError):
    code = "PREVIEW_TICKET_INVALID"
    default_resolution = "Open the port again (parallax-docker open AGENT PORT) for a new link."


class WorkspaceFullError(ServerError):
    """The agent's filesystem ran out of room while a file was written."""

    code = "WORKSPACE_FULL"
    http_status = 507
    default_resolution = (
        "Free room in the agent, or give it more (PARALLAX_TMPFS_SIZE, or a volume at /workspace)."
    )


class PreviewUnreachableError(ServerError):
    """Nothing answered on the agent's port."""

    code = "PREVIEW_UNREACHABLE"
    http_status = 502
    default_resolution = (
        "Start a server in the agent that listens on 0.0.0.0 (not 127.0.0.1) at that port."
    )
