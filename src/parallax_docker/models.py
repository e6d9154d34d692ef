"""Request and response models of the HTTP API (pydantic, no I/O).

Field names are the Parallax control plane's camelCase. Secret values (``env`` and
``credentials``) are held as SecretStr so that no repr, log line or error echoes them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictFloat,
    StrictInt,
    StringConstraints,
)

from parallax_docker.gateway_models import Budget as Budget
from parallax_docker.gateway_models import Egress as Egress
from parallax_docker.gateway_models import EgressAllow as EgressAllow
from parallax_docker.gateway_models import ModelCounts as ModelCounts
from parallax_docker.gateway_models import ModelUsage as ModelUsage

MAX_ENV_ENTRIES = 128
MAX_ENV_VALUE_BYTES = 128 * 1024
MAX_VOLUMES = 32
MAX_LABELS = 64
MAX_CAPABILITIES = 64
MAX_COMMAND_ARGS = 256
MAX_COMMAND_ARG_CHARS = 64 * 1024
NAME_MAX = 63
SHORT_TEXT_MAX = 256
LABEL_KEY_MAX = 128
LABEL_VALUE_MAX = 1024
WORKDIR_MAX = 4096
IMAGE_MAX = 512
RUNTIME_MAX = 128
VOLUME_ENTRY_MAX = 8192


class AgentType(StrEnum):
    """The kinds of agent the runtime knows: one CLI each, or any command (``custom``)."""

    CLAUDE = "claude"
    CODEX = "codex"
    GEMINI = "gemini"
    AIDER = "aider"
    CUSTOM = "custom"


AGENT_TYPES: tuple[str, ...] = tuple(kind.value for kind in AgentType)

ShortText = Annotated[str, StringConstraints(min_length=1, max_length=SHORT_TEXT_MAX)]
LabelKey = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=LABEL_KEY_MAX, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.\-/]*$"
    ),
]
LabelValue = Annotated[str, StringConstraints(max_length=LABEL_VALUE_MAX)]
Secret = Annotated[SecretStr, Field(max_length=MAX_ENV_VALUE_BYTES)]


class AgentStatus(StrEnum):
    PENDING = "pending"
    STARTING = "starting"
    # Running, but its CLI needs a login or a valid API key (see the login_required event).
    AUTHENTICATING = "authenticating"
    READY = "ready"
    BUSY = "busy"
    STOPPING = "stopping"
    STOPPED = "stopped"
    ERROR = "error"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ResourcesRequest(_Strict):
    memory: str | int | None = None
    cpu: StrictFloat | StrictInt | str | None = None
    # Maximum lifetime in seconds.
    timeout: int | None = Field(None, ge=1, le=30 * 24 * 3600)
    budget: Budget | None = None


class CredentialsRequest(_Strict):
    anthropic_key: Secret | None = Field(None, alias="anthropicKey")
    openai_key: Secret | None = Field(None, alias="openaiKey")
    google_key: Secret | None = Field(None, alias="googleKey")
    github_token: Secret | None = Field(None, alias="githubToken")
    custom: dict[str, Secret] = Field(default_factory=dict, max_length=MAX_ENV_ENTRIES)

    def as_env(self) -> dict[str, SecretStr]:
        """The variables the agent's CLI reads; custom names are taken as given."""
        named = {
            "ANTHROPIC_API_KEY": self.anthropic_key,
            "OPENAI_API_KEY": self.openai_key,
            "GOOGLE_API_KEY": self.google_key,
            "GITHUB_TOKEN": self.github_token,
        }
        env = {key: value for key, value in named.items() if value is not None}
        env.update(self.custom)
        return env


class SpawnRequest(_Strict):
    """The Parallax AgentConfig plus the Docker runtime's own fields."""

    id: str | None = Field(None, max_length=NAME_MAX)
    name: str = Field(..., max_length=NAME_MAX)
    type: AgentType
    capabilities: list[ShortText] = Field(default_factory=list, max_length=MAX_CAPABILITIES)
    role: ShortText | None = None
    reports_to: ShortText | None = Field(None, alias="reportsTo")
    workdir: str | None = Field(None, max_length=WORKDIR_MAX)
    env: dict[str, Secret] = Field(default_factory=dict, max_length=MAX_ENV_ENTRIES)
    credentials: CredentialsRequest | None = None
    resources: ResourcesRequest | None = None
    auto_restart: bool = Field(False, alias="autoRestart")
    idle_timeout: int | None = Field(None, alias="idleTimeout", ge=1, le=30 * 24 * 3600)
    execution_id: str | None = Field(None, alias="executionId", max_length=NAME_MAX)
    volumes: list[Annotated[str, StringConstraints(max_length=VOLUME_ENTRY_MAX)]] = Field(
        default_factory=list, max_length=MAX_VOLUMES
    )
    network: str | None = Field(None, max_length=NAME_MAX)
    egress: Egress = "open"
    command: (
        list[Annotated[str, StringConstraints(max_length=MAX_COMMAND_ARG_CHARS)]] | str | None
    ) = Field(None, max_length=MAX_COMMAND_ARGS)
    image: str | None = Field(None, max_length=IMAGE_MAX)
    runtime: str | None = Field(
        None,
        max_length=RUNTIME_MAX,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Container runtime (e.g. runsc); only those in PARALLAX_ALLOWED_RUNTIMES",
    )
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=MAX_LABELS)

    def secret_env(self) -> dict[str, SecretStr]:
        """Env and credentials together: both are delivered, and hidden, the same way."""
        merged = dict(self.env)
        if self.credentials is not None:
            merged.update(self.credentials.as_env())
        return merged


class AppliedResources(BaseModel):
    memory: str
    memory_bytes: int = Field(alias="memoryBytes")
    cpu: float
    nano_cpus: int = Field(alias="nanoCpus")
    timeout: int | None = None
    pids_limit: int = Field(alias="pidsLimit")
    budget: Budget | None = None

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class AgentHandle(BaseModel):
    """What the API returns for an agent; rebuilt from container labels and state."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: str
    name: str
    type: str
    status: AgentStatus
    container_id: str | None = Field(None, alias="containerId")
    container_name: str = Field(alias="containerName")
    image: str
    network: str
    role: str | None = None
    reports_to: str | None = Field(None, alias="reportsTo")
    capabilities: list[str] = Field(default_factory=list)
    resources: AppliedResources
    volumes: list[str] = Field(default_factory=list)
    env_keys: list[str] = Field(default_factory=list, alias="envKeys")
    labels: dict[str, str] = Field(default_factory=dict)
    workdir: str | None = None
    execution_id: str | None = Field(None, alias="executionId")
    auto_restart: bool = Field(False, alias="autoRestart")
    idle_timeout: int | None = Field(None, alias="idleTimeout")
    created_at: str | None = Field(None, alias="createdAt")
    started_at: str | None = Field(None, alias="startedAt")
    finished_at: str | None = Field(None, alias="finishedAt")
    exit_code: int | None = Field(None, alias="exitCode")
    error: str | None = None
    error_code: str | None = Field(None, alias="errorCode")
    health: str | None = None
    restart_count: int = Field(0, alias="restartCount")
    node: str | None = Field(None, description="The machine it runs on, on a cluster")
    stale: bool = False
    egress: Egress = "open"
    ports: list[int] = Field(
        default_factory=list,
        description="Ports opened as previews (/agents/{id}/ports/{port}/), since it started",
    )


class AgentListResponse(BaseModel):
    agents: list[AgentHandle]
    count: int


class RuntimeInfo(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    name: str = "docker"
    type: str = "docker"
    active_agents: int = Field(alias="activeAgents")
    synced: bool = Field(
        False, description="True once the agent list is in sync with the engine (writes allowed)"
    )
    engine_version: str | None = Field(None, alias="engineVersion")
    api_version: str | None = Field(None, alias="apiVersion")


class NodeHealth(BaseModel):
    """One machine of a cluster, as its manager sees it, with the agents placed on it."""

    id: str
    name: str
    role: str
    state: str = Field(description="ready, down, unknown or disconnected")
    availability: str = Field(description="active, pause or drain")
    leader: bool = False
    agents: int = Field(description="Agents the runtime knows to run there")


class HealthResponse(BaseModel):
    healthy: bool
    message: str
    runtime: RuntimeInfo
    code: str | None = None
    nodes: list[NodeHealth] | None = Field(None, description="On a cluster: its machines")


class LogsResponse(BaseModel):
    logs: list[str]
    count: int


class NetworkUsage(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    rx_bytes: int = Field(alias="rxBytes")
    tx_bytes: int = Field(alias="txBytes")


class MetricsResponse(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    agent_id: str = Field(alias="agentId")
    cpu: float = Field(description="CPU use as a percent of the agent's own limit")
    cpu_host_percent: float = Field(
        alias="cpuHostPercent", description="CPU use as a percent of the whole host"
    )
    cpu_limit: float = Field(alias="cpuLimit", description="Cores the agent may use")
    memory: int = Field(description="Memory in use, bytes (page cache excluded)")
    memory_limit: int = Field(alias="memoryLimit")
    memory_percent: float = Field(alias="memoryPercent")
    pids: int
    network: NetworkUsage
    uptime: float = Field(description="Seconds since the container started")
    timestamp: str
    model_usage: ModelUsage | None = Field(
        None, alias="modelUsage", description="with the model gateway on"
    )


class ErrorResponse(BaseModel):
    error: str
    code: str
    resolution: str
    details: dict[str, Any] | None = None


class GcReport(BaseModel):
    """What garbage collection found and (unless a dry run) removed."""

    containers: list[str]
    networks: list[str]
    volumes: list[str]
    removed: bool
    failed: list[str] = Field(default_factory=list)


MESSAGE_MAX_CHARS = 16 * 1024 * 1024
MAX_TURN_TIMEOUT_MS = 24 * 3600 * 1000


class SendRequest(_Strict):
    """``POST /agents/{id}/send``: one task for the agent (one turn of its CLI)."""

    message: str = Field(..., min_length=1, max_length=MESSAGE_MAX_CHARS)
    expect_response: bool = Field(
        False,
        alias="expectResponse",
        description="Wait for the agent's answer and return it (else return at once)",
    )
    timeout: int | None = Field(
        None,
        ge=1,
        le=MAX_TURN_TIMEOUT_MS,
        description="Bound on the turn, in milliseconds (default PARALLAX_TURN_TIMEOUT_S)",
    )


class TurnUsage(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    input_tokens: int | None = Field(alias="inputTokens")
    output_tokens: int | None = Field(alias="outputTokens")
    cost_usd: float | None = Field(alias="costUsd", description="when the CLI reports a cost")


class TurnToolCalls(BaseModel):
    count: int = Field(description="how many tool calls the turn made")
    names: list[str] = Field(description="the tools called, each once, sorted")


class FileChange(BaseModel):
    path: str = Field(description="an absolute path under /workspace")
    change: Literal["added", "modified", "deleted"]


class TurnResultShape(BaseModel):
    """A turn's answer in one shape whatever the CLI (`metadata.result`; docs/messaging.md)."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    content: str = Field(description="the final text")
    status: Literal["completed", "failed", "interrupted", "login_required"]
    usage: TurnUsage
    tool_calls: TurnToolCalls = Field(alias="toolCalls")
    files_changed: list[FileChange] | None = Field(
        alias="filesChanged",
        description="files under /workspace the turn added, modified or deleted; null when "
        "the image cannot list its workspace (no GNU find)",
    )
    files_changed_truncated: bool = Field(alias="filesChangedTruncated")
    session_id: str | None = Field(alias="sessionId")
    duration_ms: int = Field(alias="durationMs")
    raw: Any = Field(default=None, description="the CLI's own final record, as it printed it")


class MessageMetadata(BaseModel):
    """What else a message says (an open object): `turnId`, `driver`, `code`, `exitCode`, ..."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, serialize_by_alias=True)

    result: TurnResultShape | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="on every answer (outbound) of a turn",
    )

    def get(self, key: str, default: Any = None) -> Any:
        """One value by its JSON name, as from the open mapping the metadata is."""
        if key == "result":
            return self.result if self.result is not None else default
        return (self.model_extra or {}).get(key, default)


class AgentMessage(BaseModel):
    """One message of a conversation: ``inbound`` to the agent, ``outbound`` from it."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: str
    agent_id: str = Field(alias="agentId")
    direction: Literal["inbound", "outbound"]
    type: str = Field(description="task, response or error")
    content: str
    metadata: MessageMetadata = Field(default_factory=MessageMetadata)
    timestamp: str = Field(description="ISO 8601, UTC")


class SendResponse(BaseModel):
    sent: bool
    response: AgentMessage | None = None


class MessagesResponse(BaseModel):
    messages: list[AgentMessage]
    count: int
