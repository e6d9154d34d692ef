"""One exception tree for the whole project (errors/tree.py, errors/files.py).

Every error carries a stable ``code`` (what clients branch on), the HTTP status that fits it and
a ``resolution`` hint for a person. Services raise these; the API layer renders them as
``{error, code, resolution}`` and the client maps the code back to the same class.
Messages must never contain env values, credentials or tracebacks.
"""

from __future__ import annotations

from parallax_docker.errors.files import (
    BadArchiveError,
    DirectoryNotEmptyError,
    DownloadTooLargeError,
    FilePermissionError,
    FilesUnavailableError,
    FileTypeForbiddenError,
    PathConflictError,
    PathForbiddenError,
    PathNotFoundError,
    PreviewTicketError,
    PreviewUnavailableError,
    PreviewUnreachableError,
    UploadTooLargeError,
    WorkspaceFullError,
)
from parallax_docker.errors.tree import (
    AgentBusyError,
    AgentNotFoundError,
    AgentStateError,
    ConfigError,
    ConflictError,
    ContextFilesError,
    EngineError,
    ExecutionInUseError,
    ExecutionNotFoundError,
    ForbiddenError,
    GatewayDisabledError,
    HealthCheckFailedError,
    HostNotAllowedError,
    ImageNotFoundError,
    InputUnsupportedError,
    InsecureSpawnError,
    LimitAboveHostError,
    NetworkError,
    NetworkForbiddenError,
    NotFoundError,
    OriginNotAllowedError,
    ParallaxError,
    PayloadTooLargeError,
    PlacementConflictError,
    PolicyUnsupportedError,
    RequestError,
    ResourceLimitError,
    RuntimeForbiddenError,
    RuntimeUnavailableError,
    ServerError,
    SocketError,
    SpawnInterruptedError,
    ThreadNotFoundError,
    ThreadStateError,
    UnauthorizedError,
    ValidationError,
    VolumeForbiddenError,
    VolumeInUseError,
)

__all__ = [
    "AgentBusyError",
    "AgentNotFoundError",
    "AgentStateError",
    "BadArchiveError",
    "ConfigError",
    "ConflictError",
    "ContextFilesError",
    "DirectoryNotEmptyError",
    "DownloadTooLargeError",
    "EngineError",
    "ExecutionInUseError",
    "ExecutionNotFoundError",
    "FilePermissionError",
    "FileTypeForbiddenError",
    "FilesUnavailableError",
    "ForbiddenError",
    "GatewayDisabledError",
    "HealthCheckFailedError",
    "HostNotAllowedError",
    "ImageNotFoundError",
    "InputUnsupportedError",
    "InsecureSpawnError",
    "LimitAboveHostError",
    "NetworkError",
    "NetworkForbiddenError",
    "NotFoundError",
    "OriginNotAllowedError",
    "ParallaxError",
    "PathConflictError",
    "PathForbiddenError",
    "PathNotFoundError",
    "PayloadTooLargeError",
    "PlacementConflictError",
    "PolicyUnsupportedError",
    "PreviewTicketError",
    "PreviewUnavailableError",
    "PreviewUnreachableError",
    "RequestError",
    "ResourceLimitError",
    "RuntimeForbiddenError",
    "RuntimeUnavailableError",
    "ServerError",
    "SocketError",
    "SpawnInterruptedError",
    "ThreadNotFoundError",
    "ThreadStateError",
    "UnauthorizedError",
    "UploadTooLargeError",
    "ValidationError",
    "VolumeForbiddenError",
    "VolumeInUseError",
    "WorkspaceFullError",
    "all_error_classes",
]


def all_error_classes() -> list[type[ParallaxError]]:
    """Every concrete error class, base first; used to map codes back to classes."""
    seen: list[type[ParallaxError]] = []
    pending: list[type[ParallaxError]] = [ParallaxError]
    while pending:
        cls = pending.pop(0)
        seen.append(cls)
        pending.extend(cls.__subclasses__())
    return seen
