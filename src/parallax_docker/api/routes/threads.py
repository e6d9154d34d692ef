"""The /threads routes: the Parallax control plane's thread contract (docs/threads.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from parallax_docker.api.deps import RuntimeDep
from parallax_docker.api.routes.agents import GraceMs
from parallax_docker.models import ErrorResponse
from parallax_docker.thread_models import (
    SpawnThreadRequest,
    ThreadEventsResponse,
    ThreadHandle,
    ThreadInputRequest,
    ThreadListResponse,
    ThreadSendResponse,
)

router = APIRouter(prefix="/threads", tags=["threads"])

_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse} for status in (403, 404, 409, 413, 422, 502, 503, 507)
}
MAX_EVENTS = 1000


@router.post(
    "",
    status_code=201,
    response_model=ThreadHandle,
    response_model_exclude_none=True,
    responses=_ERRORS,
    summary="Spawn a thread: answered at once, its start and objective follow as events",
    description=(
        "The thread's agent is checked, admitted and reserved before the answer; its start, "
        "context files and objective (the first turn) come after it, reported as "
        "`thread_event` frames on `/ws`. The thread id (`id`, kept as given) is its agent's id."
    ),
)
async def spawn_thread(request: SpawnThreadRequest, runtime: RuntimeDep) -> ThreadHandle:
    return await runtime.threads.spawn(request)


@router.get(
    "",
    response_model=ThreadListResponse,
    response_model_exclude_none=True,
    responses=_ERRORS,
)
async def list_threads(
    runtime: RuntimeDep,
    execution_id: Annotated[str | None, Query(alias="executionId", max_length=63)] = None,
    role: Annotated[str | None, Query(max_length=256)] = None,
    status: Annotated[list[str] | None, Query(max_length=16)] = None,
    agent_type: Annotated[list[str] | None, Query(alias="agentType", max_length=16)] = None,
) -> ThreadListResponse:
    found = runtime.threads.list(
        execution_id=execution_id,
        role=role,
        statuses=status or (),
        agent_types=agent_type or (),
    )
    return ThreadListResponse(threads=found, count=len(found))


@router.get(
    "/{thread_id}",
    response_model=ThreadHandle,
    response_model_exclude_none=True,
    responses=_ERRORS,
)
async def get_thread(thread_id: str, runtime: RuntimeDep) -> ThreadHandle:
    return runtime.threads.get(thread_id)


@router.delete(
    "/{thread_id}",
    status_code=204,
    responses=_ERRORS,
    summary="Stop a thread: its agent is stopped (SIGTERM, then SIGKILL) and removed",
)
async def stop_thread(
    thread_id: str,
    runtime: RuntimeDep,
    force: bool = False,
    timeout: GraceMs = None,
) -> Response:
    await runtime.threads.stop_thread(thread_id, force=force, timeout_ms=timeout)
    return Response(status_code=204)


@router.post(
    "/{thread_id}/send",
    response_model=ThreadSendResponse,
    responses=_ERRORS,
    summary="Send a thread input: a message (a turn), or Ctrl-C/Escape to interrupt one",
    description=(
        "`message` is queued and becomes the thread's next turn. `raw` Ctrl-C (`\\u0003`) or "
        "Escape, or `keys` `C-c`/`Escape`, interrupt the running turn (409 `THREAD_STATE` when "
        "none runs); `raw` text ended with Enter is a message. Other terminal input is refused "
        "with 422 `INPUT_UNSUPPORTED`."
    ),
)
async def send_to_thread(
    thread_id: str, body: ThreadInputRequest, runtime: RuntimeDep
) -> ThreadSendResponse:
    await runtime.threads.send(thread_id, body)
    return ThreadSendResponse(sent=True)


@router.get(
    "/{thread_id}/events",
    response_model=ThreadEventsResponse,
    responses=_ERRORS,
    summary="A thread's last events, oldest first (kept across service restarts)",
)
async def thread_events(
    thread_id: str,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS)] = 100,
) -> ThreadEventsResponse:
    found = await runtime.threads.events(thread_id, limit)
    return ThreadEventsResponse(events=found, count=len(found))
