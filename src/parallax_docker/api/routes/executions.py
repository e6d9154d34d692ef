"""``DELETE /executions/{id}/resources``: remove what agents of one execution shared."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from parallax_docker.api.deps import RuntimeDep
from parallax_docker.models import ErrorResponse

router = APIRouter(prefix="/executions", tags=["executions"])


class ExecutionResourcesRemoved(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    execution_id: str = Field(alias="executionId")
    volumes: list[str]


@router.delete(
    "/{execution_id}/resources",
    response_model=ExecutionResourcesRemoved,
    responses={status: {"model": ErrorResponse} for status in (404, 409, 422, 503)},
    summary="Remove an execution's shared volumes (its agents must be stopped first)",
    description=(
        "Removes the `parallax-exec-<executionId>` home volume (the CLIs' login state) and any "
        "other volume created for that execution. 409 `EXECUTION_IN_USE` while an agent of the "
        "execution exists; 404 `EXECUTION_NOT_FOUND` when there is nothing to remove."
    ),
)
async def remove_resources(execution_id: str, runtime: RuntimeDep) -> ExecutionResourcesRemoved:
    removed = await runtime.executions.remove_resources(execution_id)
    return ExecutionResourcesRemoved(execution_id=execution_id, volumes=removed)
