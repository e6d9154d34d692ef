"""GET /health: the runtime and the engine behind it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from parallax_docker.api.deps import RuntimeDep
from parallax_docker.models import HealthResponse

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "Engine unreachable"}},
)
async def health(runtime: RuntimeDep) -> JSONResponse:
    healthy, body = await runtime.queries.health()
    return JSONResponse(
        body.model_dump(mode="json", by_alias=True, exclude_none=True),
        status_code=200 if healthy else 503,
    )
