"""The model gateway's routes: an agent's and an execution's model use and budgets
(docs/gateway.md). Every one answers 409 ``GATEWAY_DISABLED`` while the gateway is off."""

from __future__ import annotations

import json

from fastapi import APIRouter

from parallax_docker.api.deps import RuntimeDep
from parallax_docker.errors import GatewayDisabledError
from parallax_docker.models import Budget, ErrorResponse, ModelUsage
from parallax_docker.resources import validate_name
from parallax_docker.runtime.gateway.gateway import Gateway
from parallax_docker.runtime.runtime import Runtime

router = APIRouter(tags=["gateway"])
_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse} for status in (404, 409, 422, 503)
}


def gateway_of(runtime: Runtime) -> Gateway:
    if runtime.gateway is None:
        raise GatewayDisabledError("the model gateway is off")
    return runtime.gateway


def with_model_usage(runtime: Runtime, agent_id: str, handle_json: bytes) -> bytes:
    """The handle with the agent's ``modelUsage`` (unchanged with the gateway off)."""
    if runtime.gateway is None:
        return handle_json
    handle = json.loads(handle_json)
    handle["modelUsage"] = runtime.gateway.usage(agent_id).model_dump(mode="json")
    return json.dumps(handle).encode()


@router.get(
    "/agents/{agent_id}/model-usage",
    response_model=ModelUsage,
    responses=_ERRORS,
    summary="The agent's model use counted by the gateway, and its budget",
)
async def agent_model_usage(agent_id: str, runtime: RuntimeDep) -> ModelUsage:
    gateway = gateway_of(runtime)
    runtime.registry.get(agent_id)
    return gateway.usage(agent_id)


@router.patch(
    "/agents/{agent_id}/budget",
    response_model=ModelUsage,
    responses=_ERRORS,
    summary="Set (raise or lower) the agent's model budget; refused calls go through again",
)
async def set_agent_budget(agent_id: str, budget: Budget, runtime: RuntimeDep) -> ModelUsage:
    gateway = gateway_of(runtime)
    runtime.registry.get(agent_id)
    gateway.set_budget("agent", agent_id, budget)
    return gateway.usage(agent_id)


@router.get(
    "/executions/{execution_id}/model-usage",
    response_model=ModelUsage,
    responses=_ERRORS,
    summary="An execution's model use (all its agents) and its budget",
)
async def execution_model_usage(execution_id: str, runtime: RuntimeDep) -> ModelUsage:
    validate_name("executionId", execution_id)
    return gateway_of(runtime).execution_usage(execution_id)


@router.put(
    "/executions/{execution_id}/budget",
    response_model=ModelUsage,
    responses=_ERRORS,
    summary="Set the budget all agents of an execution share",
)
async def set_execution_budget(
    execution_id: str, budget: Budget, runtime: RuntimeDep
) -> ModelUsage:
    validate_name("executionId", execution_id)
    gateway = gateway_of(runtime)
    gateway.set_budget("execution", execution_id, budget)
    return gateway.execution_usage(execution_id)


@router.get(
    "/threads/{thread_id}/model-usage",
    response_model=ModelUsage,
    responses=_ERRORS,
    summary="A thread's model use (every agent that served it)",
)
async def thread_model_usage(thread_id: str, runtime: RuntimeDep) -> ModelUsage:
    validate_name("threadId", thread_id)
    return gateway_of(runtime).thread_usage(thread_id)
