"""Python client of the parallax-docker API: ``Client`` (blocking) and ``AsyncClient``.

    from parallax_docker.client import Client

    with Client() as client:               # PARALLAX_URL / PARALLAX_API_TOKEN, or arguments
        agent = client.spawn(name="helper", type="claude")
        print(client.logs(agent.id, tail=20))
        client.stop(agent.id)

Errors are the project's own classes (``AgentNotFoundError``, ``ConflictError``, ...), mapped
back from the ``code`` the service sends.
"""

from __future__ import annotations

from parallax_docker.client.async_client import AsyncClient
from parallax_docker.client.calls import DEFAULT_URL, TOKEN_ENV, URL_ENV
from parallax_docker.client.errors import (
    BadResponseError,
    ClientError,
    RequestTimeoutError,
    ServiceUnreachableError,
    code_of,
    error_class,
)
from parallax_docker.client.frames import EventFrame
from parallax_docker.client.streams import AsyncEventStream, EventStream
from parallax_docker.client.sync import Client
from parallax_docker.errors import (
    AgentBusyError,
    AgentNotFoundError,
    AgentStateError,
    ConflictError,
    EngineError,
    ExecutionInUseError,
    ExecutionNotFoundError,
    ForbiddenError,
    HealthCheckFailedError,
    ImageNotFoundError,
    InsecureSpawnError,
    LimitAboveHostError,
    NetworkError,
    NetworkForbiddenError,
    NotFoundError,
    ParallaxError,
    PayloadTooLargeError,
    RequestError,
    ResourceLimitError,
    RuntimeForbiddenError,
    RuntimeUnavailableError,
    ServerError,
    SocketError,
    SpawnInterruptedError,
    UnauthorizedError,
    ValidationError,
    VolumeForbiddenError,
    VolumeInUseError,
)
from parallax_docker.models import (
    AgentHandle,
    AgentMessage,
    GcReport,
    HealthResponse,
    MetricsResponse,
    SendResponse,
)

__all__ = [
    "DEFAULT_URL",
    "TOKEN_ENV",
    "URL_ENV",
    "AgentBusyError",
    "AgentHandle",
    "AgentMessage",
    "AgentNotFoundError",
    "AgentStateError",
    "AsyncClient",
    "AsyncEventStream",
    "BadResponseError",
    "Client",
    "ClientError",
    "ConflictError",
    "EngineError",
    "EventFrame",
    "EventStream",
    "ExecutionInUseError",
    "ExecutionNotFoundError",
    "ForbiddenError",
    "GcReport",
    "HealthCheckFailedError",
    "HealthResponse",
    "ImageNotFoundError",
    "InsecureSpawnError",
    "LimitAboveHostError",
    "MetricsResponse",
    "NetworkError",
    "NetworkForbiddenError",
    "NotFoundError",
    "ParallaxError",
    "PayloadTooLargeError",
    "RequestError",
    "RequestTimeoutError",
    "ResourceLimitError",
    "RuntimeForbiddenError",
    "RuntimeUnavailableError",
    "SendResponse",
    "ServerError",
    "ServiceUnreachableError",
    "SocketError",
    "SpawnInterruptedError",
    "UnauthorizedError",
    "ValidationError",
    "VolumeForbiddenError",
    "VolumeInUseError",
    "code_of",
    "error_class",
]
