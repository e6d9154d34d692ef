"""The /agents routes: spawn, list, get, stop, restart, logs, metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse

from parallax_docker.api.deps import RuntimeDep
from parallax_docker.api.metrics_watch import read_metrics
from parallax_docker.api.routes.gateway import with_model_usage
from parallax_docker.errors import ParallaxError, ValidationError
from parallax_docker.models import (
    AgentHandle,
    AgentListResponse,
    ErrorResponse,
    LogsResponse,
    MetricsResponse,
    SpawnRequest,
)

router = APIRouter(prefix="/agents", tags=["agents"])

# DELETE's grace period (agents and threads).
GraceMs = Annotated[int | None, Query(ge=0, le=600_000, description="Grace period in milliseconds")]

_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse} for status in (403, 404, 409, 413, 422, 502, 503, 507)
}


@router.post(
    "",
    status_code=201,
    response_model=AgentHandle,
    responses=_ERRORS,
    summary="Spawn an agent and wait until it is ready",
)
async def spawn(request: SpawnRequest, runtime: RuntimeDep) -> AgentHandle:
    return await runtime.spawner.spawn(request)


@router.get("", response_model=AgentListResponse, responses=_ERRORS)
async def list_agents(
    runtime: RuntimeDep,
    status: Annotated[list[str] | None, Query(max_length=16)] = None,
    type: Annotated[list[str] | None, Query(max_length=16)] = None,
    role: Annotated[list[str] | None, Query(max_length=16)] = None,
) -> Response:
    # Served from the registry's cached handle JSON (AgentListResponse, as documented).
    body = runtime.queries.list_json(status or (), type or (), role or ())
    return Response(content=body, media_type="application/json")


@router.get("/{agent_id}", response_model=AgentHandle, responses=_ERRORS)
async def get_agent(agent_id: str, runtime: RuntimeDep) -> Response:
    body = with_model_usage(runtime, agent_id, runtime.queries.get_json(agent_id))
    return Response(content=body, media_type="application/json")


@router.delete(
    "/{agent_id}",
    status_code=204,
    responses=_ERRORS,
    summary="Stop (SIGTERM, then SIGKILL after the timeout) and remove an agent",
)
async def stop_agent(
    agent_id: str,
    runtime: RuntimeDep,
    force: bool = False,
    timeout: GraceMs = None,
) -> Response:
    await runtime.operations.stop(
        agent_id, force=force, timeout_s=None if timeout is None else timeout / 1000
    )
    return Response(status_code=204)


@router.post("/{agent_id}/restart", response_model=AgentHandle, responses=_ERRORS)
async def restart_agent(agent_id: str, runtime: RuntimeDep) -> AgentHandle:
    return await runtime.operations.restart(agent_id)


@router.get(
    "/{agent_id}/logs",
    response_model=LogsResponse,
    responses={
        **_ERRORS,
        200: {
            "description": "Log lines; with follow=true a text/plain stream",
            "content": {"text/plain": {}},
        },
    },
)
async def agent_logs(
    agent_id: str,
    runtime: RuntimeDep,
    tail: Annotated[int | None, Query(ge=0, le=10_000)] = None,
    since: Annotated[
        str | None, Query(max_length=64, description="Unix seconds or an ISO 8601 time")
    ] = None,
    timestamps: bool = False,
    follow: bool = False,
) -> Response:
    since_s = _parse_since(since)
    if follow:
        lines = runtime.queries.stream_logs(
            agent_id, tail=tail, since=since_s, timestamps=timestamps
        )
        return StreamingResponse(_line_stream(lines), media_type="text/plain; charset=utf-8")
    logs = await runtime.queries.logs(agent_id, tail=tail, since=since_s, timestamps=timestamps)
    body = LogsResponse(logs=logs, count=len(logs))
    return Response(body.model_dump_json(), media_type="application/json")


@router.get("/{agent_id}/metrics", response_model=MetricsResponse, responses=_ERRORS)
async def agent_metrics(agent_id: str, runtime: RuntimeDep) -> MetricsResponse:
    return await read_metrics(runtime, agent_id)


async def _line_stream(lines: AsyncIterator[str]) -> AsyncIterator[bytes]:
    try:
        async for line in lines:
            yield (line + "\n").encode()
    except ParallaxError:
        # The headers are gone already; ending the stream is the only signal left.
        return


def _parse_since(value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValidationError(
            "since must be Unix seconds or an ISO 8601 time such as 2026-01-01T00:00:00Z"
        ) from None
