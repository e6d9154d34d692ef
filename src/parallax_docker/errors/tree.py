"""The exception tree: its roots, the 4xx branch (the caller's side) and the 5xx branch.

Every error carries a stable ``code`` (what clients branch on), the HTTP status that fits it and
a ``resolution`` hint for a person. Messages must never contain env values, credentials or
tracebacks. The errors of files, diffs and previews hang from these branches in errors/files.py.
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


# -- the caller's side: 4xx ---------------------------------------------------------------------


class RequestError(ParallaxError):
    """The request cannot be served as asked; the caller can change it (4xx)."""

    code = "BAD_REQUEST"
    http_status = 400
    default_resolution = "Correct the request; the message says what is wrong."


class ValidationError(RequestError):
    code = "VALIDATION_ERROR"
    http_status = 422
    default_resolution = "Correct the request fields named in the message."


class LimitAboveHostError(ValidationError):
    """A memory or CPU limit larger than the whole host: no amount of waiting helps."""

    code = "LIMIT_ABOVE_HOST"
    default_resolution = "Ask for less memory or CPU than the host has."


class PolicyUnsupportedError(ValidationError):
    """A thread asked for a policy or approval preset that this runtime cannot keep."""

    code = "POLICY_UNSUPPORTED"
    default_resolution = "Leave the setting out, or choose one docs/threads.md says is kept."


class InputUnsupportedError(ValidationError):
    """Terminal input (raw text, keys) that a thread's headless turns have no use for."""

    code = "INPUT_UNSUPPORTED"
    default_resolution = (
        "Send {message} for a new turn, or Ctrl-C (raw '\\u0003' or key 'C-c') to interrupt "
        "the running one; docs/threads.md maps the rest."
    )


class PayloadTooLargeError(RequestError):
    code = "PAYLOAD_TOO_LARGE"
    http_status = 413
    default_resolution = "Send a smaller request body."


class UnauthorizedError(RequestError):
    code = "UNAUTHORIZED"
    http_status = 401
    default_resolution = "Send 'Authorization: Bearer <token>' with the service's API token."


class ForbiddenError(RequestError):
    """The request asks for something the runtime's policy never allows (403)."""

    code = "FORBIDDEN"
    http_status = 403
    default_resolution = "docs/security.md lists what agents may be given."


class HostNotAllowedError(ForbiddenError):
    """The request's Host is not a name the service is served as (DNS rebinding, a stray proxy)."""

    code = "HOST_NOT_ALLOWED"
    default_resolution = (
        "Call the service by a loopback name (127.0.0.1, localhost, [::1]) or add the name to "
        "PARALLAX_ALLOWED_HOSTS."
    )


class OriginNotAllowedError(ForbiddenError):
    """A browser request from a page of another origin (cross-site request forgery)."""

    code = "ORIGIN_NOT_ALLOWED"
    default_resolution = (
        "Web pages of other origins may not call the service; add the page's origin "
        "(scheme://host:port) to PARALLAX_ALLOWED_ORIGINS if it is yours."
    )


class VolumeForbiddenError(ForbiddenError):
    code = "VOLUME_FORBIDDEN"
    default_resolution = (
        "Mount a project directory or a named volume; host system paths and the Docker socket "
        "are never mounted."
    )


class NetworkForbiddenError(ForbiddenError):
    code = "NETWORK_FORBIDDEN"
    default_resolution = (
        "Use the default agent network, a named network, 'internal' or 'none'; host and "
        "container network modes break isolation."
    )


class RuntimeForbiddenError(ForbiddenError):
    """A request named a container runtime the service does not allow."""

    code = "RUNTIME_FORBIDDEN"
    default_resolution = (
        "Leave 'runtime' out (the service's PARALLAX_RUNTIME applies) or pick one of "
        "PARALLAX_ALLOWED_RUNTIMES."
    )


class NotFoundError(RequestError):
    code = "NOT_FOUND"
    http_status = 404
    default_resolution = "See the OpenAPI document at /openapi.json for the routes."


class AgentNotFoundError(NotFoundError):
    code = "AGENT_NOT_FOUND"
    default_resolution = "List agents with GET /agents to find a valid id."


class ThreadNotFoundError(NotFoundError):
    code = "THREAD_NOT_FOUND"
    default_resolution = "List threads with GET /threads to find a valid id."


class ImageNotFoundError(NotFoundError):
    code = "IMAGE_NOT_FOUND"
    default_resolution = "Build the image: parallax-docker images build <type>."


class ExecutionNotFoundError(NotFoundError):
    code = "EXECUTION_NOT_FOUND"
    default_resolution = "Nothing is kept for this executionId; there is nothing to remove."


class ConflictError(RequestError):
    """The id or name is taken (and, as a base, any request at odds with current state)."""

    code = "CONFLICT"
    http_status = 409
    default_resolution = "Choose another id or name, or remove the existing agent first."


class AgentStateError(ConflictError):
    code = "AGENT_STATE"
    default_resolution = "Wait for the agent to reach a state that allows this operation."


class AgentBusyError(AgentStateError):
    """A message arrived while the agent was still working on the previous one."""

    code = "AGENT_BUSY"
    default_resolution = (
        "Wait for the agent_ready event (or poll GET /agents/{id} until status is ready), then "
        "send again; an agent works on one message at a time."
    )


class ThreadStateError(ConflictError):
    """The thread has ended, or has nothing running to interrupt."""

    code = "THREAD_STATE"
    default_resolution = "GET /threads/{id} shows its status; spawn a new thread once it ended."


class ExecutionInUseError(ConflictError):
    code = "EXECUTION_IN_USE"
    default_resolution = (
        "Stop the execution's agents first (DELETE /agents/{id}), then remove its resources."
    )


class VolumeInUseError(ConflictError):
    """The engine refuses to remove a volume a container still holds."""

    code = "VOLUME_IN_USE"
    default_resolution = "Remove the containers that use the volume first."


class PlacementConflictError(ConflictError):
    """On a cluster, an agent's volumes live on different machines: no one node can mount
    them all (volumes are local to the machine that holds them)."""

    code = "PLACEMENT_CONFLICT"
    default_resolution = (
        "Mount volumes that live on one node (an execution's agents share its node), or remove "
        "the stray copy of the volume."
    )


# -- the service's side: 5xx ---------------------------------------------------------------------


class GatewayDisabledError(ConflictError):
    """A model-gateway route or field while the gateway is off (docs/gateway.md)."""

    code = "GATEWAY_DISABLED"
    default_resolution = "Start the service with PARALLAX_GATEWAY=true."


class ServerError(ParallaxError):
    """The runtime, the engine or the host failed to do what was asked (5xx)."""

    code = "SERVER_ERROR"


class ConfigError(ServerError):
    code = "CONFIG_ERROR"
    http_status = 500
    default_resolution = "Fix the setting; docs/configuration.md lists every one."


class ResourceLimitError(ServerError):
    """The host has no room left for the agent's limits (the spec's RESOURCE_LIMIT)."""

    code = "RESOURCE_LIMIT"
    http_status = 507
    default_resolution = "Stop some agents or lower the requested memory/cpu."


class HealthCheckFailedError(ServerError):
    code = "HEALTH_CHECK_FAILED"
    http_status = 502
    default_resolution = (
        "Check the agent's command and image: GET /agents/{id}/logs shows its output. The "
        "container was removed."
    )


class SpawnInterruptedError(ServerError):
    """A spawn this request waited for ended without an agent (a crash, a concurrent stop)."""

    code = "SPAWN_INTERRUPTED"
    http_status = 503
    default_resolution = "Send the request again: nothing of the interrupted spawn is left."


class ContextFilesError(ServerError):
    """A thread's context file could not be written into its workspace."""

    code = "CONTEXT_FILES_FAILED"
    http_status = 502
    default_resolution = (
        "Check that the agent's user may write the workspace folder (its owner and mode)."
    )


class NetworkError(ServerError):
    code = "NETWORK_ERROR"
    http_status = 502
    default_resolution = "Create or check the Docker network (docker network ls)."


class SocketError(ServerError):
    code = "SOCKET_ERROR"
    http_status = 503
    default_resolution = "Check that the Docker daemon is running and DOCKER_SOCKET points at it."


class EngineError(ServerError):
    """The engine refused an operation in a way no more specific error describes."""

    code = "ENGINE_ERROR"
    http_status = 502
    default_resolution = "Check the Docker daemon's logs; retry if the engine was busy."


class InsecureSpawnError(ServerError):
    """The engine did not apply a limit or security setting it was asked for (fail closed)."""

    code = "INSECURE_SPAWN"
    http_status = 500
    default_resolution = (
        "The Docker engine could not enforce a limit or security option; check its cgroup and "
        "kernel support (docker info warnings)."
    )


class RuntimeUnavailableError(ServerError):
    """The configured or allowed container runtime is not registered with the engine."""

    code = "RUNTIME_UNAVAILABLE"
    http_status = 503
    default_resolution = (
        "Install the runtime (runsc for gVisor) and register it in the engine's daemon.json "
        "'runtimes', or change PARALLAX_RUNTIME / PARALLAX_ALLOWED_RUNTIMES."
    )
