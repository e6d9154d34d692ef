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
    CapacityExceededError,
    ConflictError,
    EngineError,
    ExecutionInUseError,
    ExecutionNotFoundError,
    HealthCheckFailedError,
    ImageNotFoundError,
    InsecureSpawnError,
    NetworkError,
    NetworkForbiddenError,
    ParallaxError,
    PayloadTooLargeError,
    ResourceLimitError,
    RuntimeForbiddenError,
    RuntimeUnavailableError,
    SocketError,
    UnauthorizedError,
    ValidationError,
    VolumeForbiddenError,
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
    "CapacityExceededError",
    "Client",
    "ClientError",
    "ConflictError",
    "EngineError",
    "EventFrame",
    "EventStream",
    "ExecutionInUseError",
    "ExecutionNotFoundError",
    "GcReport",
    "HealthCheckFailedError",
    "HealthResponse",
    "ImageNotFoundError",
    "InsecureSpawnError",
    "MetricsResponse",
    "NetworkError",
    "NetworkForbiddenError",
    "ParallaxError",
    "PayloadTooLargeError",
    "RequestTimeoutError",
    "ResourceLimitError",
    "RuntimeForbiddenError",
    "RuntimeUnavailableError",
    "SendResponse",
    "ServiceUnreachableError",
    "SocketError",
    "UnauthorizedError",
    "ValidationError",
    "VolumeForbiddenError",
    "code_of",
    "error_class",
]
