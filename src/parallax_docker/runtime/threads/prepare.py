"""A thread request -> the agent to spawn and the thread's spec: every thread rule that needs no
engine call, so that a bad request is refused before anything is made.

- ``preparation.*`` wins over the top-level field of the same name (as upstream's runtimes do).
- ``workspace.path`` is mounted at /workspace, read-only for the ``readonly`` preset; the host
  path policy (``PARALLAX_ALLOWED_HOST_PATHS`` for writes) decides, as for any mount.
- ``env`` joins the agent's secrets with ``PARALLAX_THREAD_ID``, ``PARALLAX_THREAD_OBJECTIVE``,
  ``PARALLAX_THREAD_MEMORY_FILE`` (the first context file's path), ``PARALLAX_EXECUTION_ID`` and
  ``PARALLAX_APPROVAL_PRESET``, which the runtime sets.
- ``contextFiles`` must stay inside the workspace: relative, without ``.`` or ``..`` parts.
- ``policy`` fields are honoured or refused (POLICY_UNSUPPORTED); so is the approval preset.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass

from pydantic import SecretStr

from parallax_docker.errors import PolicyUnsupportedError, ValidationError
from parallax_docker.models import SpawnRequest
from parallax_docker.resources import validate_name
from parallax_docker.runtime.drivers.approval import supported, unsupported_reason
from parallax_docker.runtime.threads import labels as thread_labels
from parallax_docker.runtime.threads.spec import ThreadSpec
from parallax_docker.security import AGENT_WORKSPACE
from parallax_docker.thread_models import ApprovalPreset, SpawnThreadRequest, ThreadWorkspaceRef

RUNTIME_ENV = (
    "PARALLAX_THREAD_ID",
    "PARALLAX_THREAD_OBJECTIVE",
    "PARALLAX_THREAD_MEMORY_FILE",
    "PARALLAX_EXECUTION_ID",
    "PARALLAX_APPROVAL_PRESET",
)


@dataclass(frozen=True)
class PreparedThread:
    spec: ThreadSpec
    agent: SpawnRequest
    files: tuple[dict[str, str], ...]
    labels: dict[str, str]


def new_thread_id() -> str:
    return f"thread-{secrets.token_hex(6)}"


def prepare(request: SpawnThreadRequest, now: float | None = None) -> PreparedThread:
    thread_id = request.id or new_thread_id()
    validate_name("id", thread_id)
    validate_name("executionId", request.execution_id)
    preset = request.effective_preset()
    if not supported(request.agent_type.value, preset):
        raise PolicyUnsupportedError(unsupported_reason(request.agent_type.value, preset))
    policy = request.policy
    if policy is not None and policy.auto_interrupt_on_tool_running:
        raise PolicyUnsupportedError(
            "policy.autoInterruptOnToolRunning is not kept: a turn is never interrupted because "
            "its CLI runs a tool (send Ctrl-C to interrupt one)"
        )
    if policy is not None and policy.max_idle_checks and not policy.idle_timeout_ms:
        raise ValidationError("policy.maxIdleChecks needs policy.idleTimeoutMs")
    files = _context_files(request)
    workspace = request.effective_workspace()
    volumes = _workspace_volumes(workspace, preset)
    env: dict[str, SecretStr] = {
        key: value for key, value in request.effective_env().items() if key not in RUNTIME_ENV
    }
    runtime_env = {
        "PARALLAX_THREAD_ID": thread_id,
        "PARALLAX_THREAD_OBJECTIVE": request.objective,
        "PARALLAX_THREAD_MEMORY_FILE": files[0]["path"] if files else "",
        "PARALLAX_EXECUTION_ID": request.execution_id,
        "PARALLAX_APPROVAL_PRESET": preset.value,
    }
    env.update({key: SecretStr(value) for key, value in runtime_env.items()})
    spec = ThreadSpec(
        id=thread_id,
        execution_id=request.execution_id,
        name=request.name,
        agent_type=request.agent_type.value,
        objective=request.objective,
        created_at=time.time() if now is None else now,
        approval_preset=preset,
        role=request.role,
        workspace=(
            workspace.model_dump(mode="json", by_alias=True, exclude_none=True)
            if workspace
            else None
        ),
        metadata=request.metadata,
        idle_timeout_s=(
            policy.idle_timeout_ms / 1000 if policy and policy.idle_timeout_ms else None
        ),
        max_idle_checks=policy.max_idle_checks if policy else None,
        summarize_after_turns=policy.summarize_after_turns if policy else None,
        spec_hash=spec_hash(request),
    )
    agent = SpawnRequest.model_validate(
        {
            "id": thread_id,
            # Thread names are free text; the agent's name is an alias on its network.
            "name": thread_id,
            "type": request.agent_type,
            "role": request.role,
            "env": env,
            "executionId": request.execution_id,
            "volumes": volumes,
            "image": request.image,
            "resources": request.resources,
        }
    )
    return PreparedThread(spec=spec, agent=agent, files=files, labels=thread_labels.encode(spec))


def spec_hash(request: SpawnThreadRequest) -> str:
    """A digest of the request's non-secret fields and its env *names* (retried spawns)."""
    public = request.model_dump(
        mode="json", by_alias=True, exclude={"id": True, "env": True, "preparation": {"env"}}
    )
    public["envKeys"] = sorted(request.effective_env())
    encoded = json.dumps(public, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()[:16]


def _workspace_volumes(workspace: ThreadWorkspaceRef | None, preset: ApprovalPreset) -> list[str]:
    if workspace is None:
        return []
    path = workspace.path
    if path is None:
        if workspace.repo is not None:
            raise ValidationError(
                "workspace.repo without workspace.path: this runtime mounts a prepared folder "
                "and does not clone repositories",
                resolution="Give workspace.path, a folder on the runtime's host (the control "
                "plane's thread preparation provisions one).",
            )
        return []
    if not path.startswith("/") or ":" in path or "\x00" in path:
        raise ValidationError(
            "workspace.path must be an absolute host path without ':'",
        )
    mode = "ro" if preset == ApprovalPreset.READONLY else "rw"
    return [f"{path}:{AGENT_WORKSPACE}:{mode}"]


def _context_files(request: SpawnThreadRequest) -> tuple[dict[str, str], ...]:
    files: list[dict[str, str]] = []
    seen: set[str] = set()
    for item in request.effective_context_files():
        path = safe_relative_path(item.path)
        if path in seen:
            raise ValidationError(f"contextFiles names {path[:200]!r} twice")
        if "\x00" in item.content:
            raise ValidationError(f"contextFiles {path[:200]!r}: content cannot hold NUL bytes")
        seen.add(path)
        files.append({"path": path, "content": item.content})
    return tuple(files)


def safe_relative_path(path: str) -> str:
    """``path`` if it names a file inside the workspace: relative, no ``.``/``..``/empty parts."""
    shown = repr(path[:200])
    parts = path.split("/")
    if (
        path.startswith("/")
        or "\x00" in path
        or "\\" in path
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise ValidationError(
            f"contextFiles path {shown} must stay inside the workspace: a relative path "
            "without '.', '..' or empty parts",
        )
    return path
