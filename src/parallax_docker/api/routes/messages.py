"""Talking to agents over HTTP: ``POST /agents/{id}/send`` and ``GET /agents/{id}/messages``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from parallax_docker.api.deps import RuntimeDep
from parallax_docker.models import ErrorResponse, MessagesResponse, SendRequest, SendResponse
from parallax_docker.runtime.store import MAX_MESSAGES_PER_AGENT

router = APIRouter(prefix="/agents", tags=["messages"])

_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse} for status in (404, 409, 413, 422, 503)
}


@router.post(
    "/{agent_id}/send",
    response_model=SendResponse,
    # Unset, not None: an answer's metadata keeps its null values (metadata.result.usage, ...).
    response_model_exclude_unset=True,
    responses=_ERRORS,
    summary="Send the agent a task (one turn of its CLI); optionally wait for the answer",
    description=(
        "With `expectResponse` the answer comes back as `response` once the turn ends (at most "
        "`timeout` ms). A turn that times out, fails, or finds the CLI logged out is answered "
        "with a message of type `error` whose `metadata.code` is `TURN_TIMEOUT`, `TURN_FAILED` "
        "or `LOGIN_REQUIRED`. While a turn runs the agent is `busy` and another send is "
        "refused with 409 `AGENT_BUSY`."
    ),
)
async def send(agent_id: str, body: SendRequest, runtime: RuntimeDep) -> SendResponse:
    return await runtime.messaging.send(
        agent_id, body.message, expect_response=body.expect_response, timeout_ms=body.timeout
    )


@router.get(
    "/{agent_id}/messages",
    response_model=MessagesResponse,
    responses=_ERRORS,
    summary="The conversation with an agent, oldest first (kept across service restarts)",
)
async def messages(
    agent_id: str,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_MESSAGES_PER_AGENT)] = 200,
) -> MessagesResponse:
    found = await runtime.messaging.messages(agent_id, limit)
    return MessagesResponse(messages=found, count=len(found))
