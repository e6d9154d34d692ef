"""Request and response models of the thread routes (pydantic, no I/O).

The shapes are upstream Parallax's ``SpawnThreadInput``, ``ThreadHandle``, ``ThreadInput`` and
``ThreadEvent`` (packages/runtime-interface/src/types.ts), in its camelCase, with the Docker
runtime's own extras (``image``, ``resources``). Unknown fields are refused, as for agents. Env
values are secrets (SecretStr): never echoed, logged or evented. docs/threads.md is the contract.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from parallax_docker.models import (
    IMAGE_MAX,
    MAX_ENV_ENTRIES,
    MESSAGE_MAX_CHARS,
    NAME_MAX,
    SHORT_TEXT_MAX,
    AgentType,
    ResourcesRequest,
    Secret,
    ShortText,
)

# The objective reaches the agent as PARALLAX_THREAD_OBJECTIVE too: one environment string may
# hold at most 128 KiB (MAX_ARG_STRLEN), so the objective stays well below it.
OBJECTIVE_MAX_BYTES = 64 * 1024
MAX_CONTEXT_FILES = 64
CONTEXT_FILE_MAX_BYTES = 1024 * 1024
CONTEXT_PATH_MAX = 1024
METADATA_MAX_BYTES = 16 * 1024
MAX_KEYS = 64
RAW_MAX_CHARS = 64 * 1024
WORKSPACE_FIELD_MAX = 4096


class ThreadStatus(StrEnum):
    """Upstream's thread states; docs/threads.md says when each is taken."""

    PENDING = "pending"
    PREPARING = "preparing"
    STARTING = "starting"
    READY = "ready"
    RUNNING = "running"
    BLOCKED = "blocked"
    IDLE = "idle"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"


class ApprovalPreset(StrEnum):
    """What an agent may do without a person's approval (runtime/drivers/approval.py)."""

    READONLY = "readonly"
    STANDARD = "standard"
    PERMISSIVE = "permissive"
    AUTONOMOUS = "autonomous"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)


WorkspaceText = Annotated[str, StringConstraints(min_length=1, max_length=WORKSPACE_FIELD_MAX)]


class ThreadWorkspaceRef(_Strict):
    """Where the thread works: ``path`` (a folder on this host) is mounted at /workspace; the
    other fields describe it and are kept as given."""

    workspace_id: WorkspaceText | None = Field(None, alias="workspaceId")
    path: WorkspaceText | None = None
    repo: WorkspaceText | None = None
    branch: WorkspaceText | None = None
    worktree_id: WorkspaceText | None = Field(None, alias="worktreeId")


class ThreadContextFile(_Strict):
    """A file written into the workspace, at ``path`` relative to it, before the first turn."""

    path: str = Field(..., min_length=1, max_length=CONTEXT_PATH_MAX)
    content: str = Field(..., max_length=CONTEXT_FILE_MAX_BYTES)


class ThreadPolicy(_Strict):
    """Supervision of a long-lived thread; each field is honoured or refused (docs/threads.md)."""

    idle_timeout_ms: int | None = Field(None, alias="idleTimeoutMs", ge=1000, le=30 * 86400_000)
    max_idle_checks: int | None = Field(None, alias="maxIdleChecks", ge=1, le=10_000)
    auto_interrupt_on_tool_running: bool | None = Field(None, alias="autoInterruptOnToolRunning")
    max_auto_responses: int | None = Field(None, alias="maxAutoResponses", ge=0, le=10_000)
    require_workspace_boundary: bool | None = Field(None, alias="requireWorkspaceBoundary")
    summarize_after_turns: int | None = Field(None, alias="summarizeAfterTurns", ge=1, le=10_000)


ContextFiles = Annotated[list[ThreadContextFile], Field(max_length=MAX_CONTEXT_FILES)]
SecretEnv = Annotated[dict[str, Secret], Field(max_length=MAX_ENV_ENTRIES)]


class ThreadPreparation(_Strict):
    """What the control plane prepared; each field wins over the top-level one of its name."""

    workspace: ThreadWorkspaceRef | None = None
    env: SecretEnv | None = None
    context_files: ContextFiles | None = Field(None, alias="contextFiles")
    approval_preset: ApprovalPreset | None = Field(None, alias="approvalPreset")


def _bounded_json(value: dict[str, Any] | None, what: str, limit: int) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        size = len(json.dumps(value, separators=(",", ":")).encode())
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be plain JSON") from None
    if size > limit:
        raise ValueError(f"{what} takes {size} bytes as JSON; at most {limit}")
    return value


class SpawnThreadRequest(_Strict):
    """``POST /threads``: upstream's SpawnThreadInput plus the Docker runtime's extras."""

    id: str | None = Field(None, max_length=NAME_MAX)
    execution_id: str = Field(..., alias="executionId", min_length=1, max_length=NAME_MAX)
    name: str = Field(..., min_length=1, max_length=SHORT_TEXT_MAX)
    agent_type: AgentType = Field(..., alias="agentType")
    objective: str = Field(..., min_length=1, max_length=OBJECTIVE_MAX_BYTES)
    role: ShortText | None = None
    preparation: ThreadPreparation | None = None
    workspace: ThreadWorkspaceRef | None = None
    env: SecretEnv | None = None
    context_files: ContextFiles | None = Field(None, alias="contextFiles")
    approval_preset: ApprovalPreset | None = Field(None, alias="approvalPreset")
    metadata: dict[str, Any] | None = None
    policy: ThreadPolicy | None = None
    image: str | None = Field(None, max_length=IMAGE_MAX, description="Docker runtime: the image")
    resources: ResourcesRequest | None = Field(
        None, description="Docker runtime: memory, cpu and lifetime (timeout, seconds)"
    )

    @field_validator("objective")
    @classmethod
    def _objective_fits_env(cls, value: str) -> str:
        if len(value.encode()) > OBJECTIVE_MAX_BYTES:
            raise ValueError(f"objective is longer than {OBJECTIVE_MAX_BYTES} bytes")
        if "\x00" in value:
            raise ValueError("objective cannot contain NUL bytes")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_bounded(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _bounded_json(value, "metadata", METADATA_MAX_BYTES)

    # The effective preparation: preparation.* wins over the top-level field of the same name.

    def effective_workspace(self) -> ThreadWorkspaceRef | None:
        prepared = self.preparation.workspace if self.preparation else None
        return prepared or self.workspace

    def effective_env(self) -> dict[str, Any]:
        prepared = self.preparation.env if self.preparation else None
        return dict(prepared if prepared is not None else self.env or {})

    def effective_context_files(self) -> list[ThreadContextFile]:
        prepared = self.preparation.context_files if self.preparation else None
        return list(prepared if prepared is not None else self.context_files or [])

    def effective_preset(self) -> ApprovalPreset:
        prepared = self.preparation.approval_preset if self.preparation else None
        return prepared or self.approval_preset or ApprovalPreset.AUTONOMOUS


class ThreadInputRequest(_Strict):
    """``POST /threads/{id}/send``: a message (a turn), or terminal input (``raw``, ``keys``)."""

    message: str | None = Field(None, max_length=MESSAGE_MAX_CHARS)
    raw: str | None = Field(None, max_length=RAW_MAX_CHARS)
    keys: list[ShortText] | None = Field(None, max_length=MAX_KEYS)
    metadata: dict[str, Any] | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata_bounded(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _bounded_json(value, "metadata", METADATA_MAX_BYTES)


class ThreadCompletion(BaseModel):
    state: str = Field(description="partial, complete or failed")
    summary: str


class ThreadHandle(BaseModel):
    """What the API returns for a thread (dates ISO 8601, UTC)."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: str
    execution_id: str = Field(alias="executionId")
    runtime_name: str = Field("docker", alias="runtimeName")
    agent_id: str | None = Field(None, alias="agentId")
    agent_type: str = Field(alias="agentType")
    name: str
    role: str | None = None
    status: ThreadStatus
    workspace: ThreadWorkspaceRef | None = None
    objective: str
    approval_preset: ApprovalPreset = Field(ApprovalPreset.AUTONOMOUS, alias="approvalPreset")
    created_at: str = Field(alias="createdAt")
    updated_at: str = Field(alias="updatedAt")
    last_activity_at: str | None = Field(None, alias="lastActivityAt")
    summary: str | None = None
    completion: ThreadCompletion | None = None
    metadata: dict[str, Any] | None = None
    error: str | None = None
    error_code: str | None = Field(None, alias="errorCode")


class ThreadListResponse(BaseModel):
    threads: list[ThreadHandle]
    count: int


class ThreadEventBody(BaseModel):
    """One normalised thread event (``thread_event`` frames carry it with the thread)."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    thread_id: str = Field(alias="threadId")
    execution_id: str = Field(alias="executionId")
    type: str
    timestamp: str
    data: dict[str, Any] = Field(default_factory=dict)


class ThreadEventsResponse(BaseModel):
    events: list[ThreadEventBody]
    count: int


class ThreadSendResponse(BaseModel):
    sent: bool
