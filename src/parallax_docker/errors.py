"""One exception tree for the whole project.

Every error carries a stable ``code`` (what clients branch on), the HTTP status that fits it and
a ``resolution`` hint for a person. Services raise these; the API layer renders them as
``{error, code, resolution}`` and the client maps the code back to the same class.
Messages must never contain env values, credentials or tracebacks.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ParallaxError(Exception):
    code: ClassVar[str] = "INTERNAL_ERROR"
    http_status: ClassVar[int] = 500
    default_resolution: ClassVar[str] = "Check the service logs; this is a bug if it repeats."

    def __init__(
        self,
        message: str,
        *,
        resolution: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.resolution = resolution or self.default_resolution
        self.details = details or {}

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "error": self.message,
            "code": self.code,
            "resolution": self.resolution,
        }
        if self.details:
            body["details"] = self.details
        return body


class ConfigError(ParallaxError):
    code = "CONFIG_ERROR"
    http_status = 500
    default_resolution = "Fix the setting; docs/configuration.md lists every one."


class ValidationError(ParallaxError):
    code = "VALIDATION_ERROR"
    http_status = 422
    default_resolution = "Correct the request fields named in the message."


class PayloadTooLargeError(ParallaxError):
    code = "PAYLOAD_TOO_LARGE"
    http_status = 413
    default_resolution = "Send a smaller request body."


class UnauthorizedError(ParallaxError):
    code = "UNAUTHORIZED"
    http_status = 401
    default_resolution = "Send 'Authorization: Bearer <token>' with the service's API token."


class HostNotAllowedError(ParallaxError):
    """The request's Host is not a name the service is served as (DNS rebinding, a stray proxy)."""

    code = "HOST_NOT_ALLOWED"
    http_status = 403
    default_resolution = (
        "Call the service by a loopback name (127.0.0.1, localhost, [::1]) or add the name to "
        "PARALLAX_ALLOWED_HOSTS."
    )


class OriginNotAllowedError(ParallaxError):
    """A browser request from a page of another origin (cross-site request forgery)."""

    code = "ORIGIN_NOT_ALLOWED"
    http_status = 403
    default_resolution = (
        "Web pages of other origins may not call the service; add the page's origin "
        "(scheme://host:port) to PARALLAX_ALLOWED_ORIGINS if it is yours."
    )


class VolumeForbiddenError(ParallaxError):
    code = "VOLUME_FORBIDDEN"
    http_status = 403
    default_resolution = (
        "Mount a project directory or a named volume; host system paths and the Docker socket "
        "are never mounted."
    )


class NetworkForbiddenError(ParallaxError):
    code = "NETWORK_FORBIDDEN"
    http_status = 403
    default_resolution = (
        "Use the default agent network, a named network, 'internal' or 'none'; host and "
        "container network modes break isolation."
    )


class AgentNotFoundError(ParallaxError):
    code = "AGENT_NOT_FOUND"
    http_status = 404
    default_resolution = "List agents with GET /agents to find a valid id."


class ImageNotFoundError(ParallaxError):
    code = "IMAGE_NOT_FOUND"
    http_status = 404
    default_resolution = "Build the image: parallax-docker images build <type>."


class ConflictError(ParallaxError):
    code = "CONFLICT"
    http_status = 409
    default_resolution = "Choose another id or name, or remove the existing agent first."


class ResourceLimitError(ParallaxError):
    """A limit cannot be honoured: above the host, or the host is out of capacity."""

    code = "RESOURCE_LIMIT"
    http_status = 422
    default_resolution = "Increase limits or reduce agents."


class CapacityExceededError(ResourceLimitError):
    http_status = 507
    default_resolution = "Stop some agents or lower the requested memory/cpu."


class HealthCheckFailedError(ParallaxError):
    code = "HEALTH_CHECK_FAILED"
    http_status = 502
    default_resolution = (
        "Check the agent's command and image: GET /agents/{id}/logs shows its output. The "
        "container was removed."
    )


class NetworkError(ParallaxError):
    code = "NETWORK_ERROR"
    http_status = 502
    default_resolution = "Create or check the Docker network (docker network ls)."


class SocketError(ParallaxError):
    code = "SOCKET_ERROR"
    http_status = 503
    default_resolution = "Check that the Docker daemon is running and DOCKER_SOCKET points at it."


class EngineError(ParallaxError):
    """The engine refused an operation in a way no more specific error describes."""

    code = "ENGINE_ERROR"
    http_status = 502
    default_resolution = "Check the Docker daemon's logs; retry if the engine was busy."


class InsecureSpawnError(ParallaxError):
    """The engine did not apply a limit or security setting it was asked for (fail closed)."""

    code = "INSECURE_SPAWN"
    http_status = 500
    default_resolution = (
        "The Docker engine could not enforce a limit or security option; check its cgroup and "
        "kernel support (docker info warnings)."
    )


class RuntimeForbiddenError(ParallaxError):
    """A request named a container runtime the service does not allow."""

    code = "RUNTIME_FORBIDDEN"
    http_status = 403
    default_resolution = (
        "Leave 'runtime' out (the service's PARALLAX_RUNTIME applies) or pick one of "
        "PARALLAX_ALLOWED_RUNTIMES."
    )


class RuntimeUnavailableError(ParallaxError):
    """The configured or allowed container runtime is not registered with the engine."""

    code = "RUNTIME_UNAVAILABLE"
    http_status = 503
    default_resolution = (
        "Install the runtime (runsc for gVisor) and register it in the engine's daemon.json "
        "'runtimes', or change PARALLAX_RUNTIME / PARALLAX_ALLOWED_RUNTIMES."
    )


class AgentStateError(ParallaxError):
    code = "AGENT_STATE"
    http_status = 409
    default_resolution = "Wait for the agent to reach a state that allows this operation."


class AgentBusyError(AgentStateError):
    """A message arrived while the agent was still working on the previous one."""

    code = "AGENT_BUSY"
    default_resolution = (
        "Wait for the agent_ready event (or poll GET /agents/{id} until status is ready), then "
        "send again; an agent works on one message at a time."
    )


class ExecutionNotFoundError(ParallaxError):
    code = "EXECUTION_NOT_FOUND"
    http_status = 404
    default_resolution = "Nothing is kept for this executionId; there is nothing to remove."


class ExecutionInUseError(ParallaxError):
    code = "EXECUTION_IN_USE"
    http_status = 409
    default_resolution = (
        "Stop the execution's agents first (DELETE /agents/{id}), then remove its resources."
    )


def all_error_classes() -> list[type[ParallaxError]]:
    """Every concrete error class, base first; used to map codes back to classes."""
    seen: list[type[ParallaxError]] = []
    pending: list[type[ParallaxError]] = [ParallaxError]
    while pending:
        cls = pending.pop(0)
        seen.append(cls)
        pending.extend(cls.__subclasses__())
    return seen
