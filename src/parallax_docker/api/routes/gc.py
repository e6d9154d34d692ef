"""POST /gc: report, and remove, what agents left behind."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from parallax_docker.api.deps import ServiceDep
from parallax_docker.models import ErrorResponse, GcReport
from parallax_docker.runtime.gc import collect_garbage

router = APIRouter(tags=["maintenance"])


@router.post(
    "/gc",
    response_model=GcReport,
    responses={503: {"model": ErrorResponse}},
    summary="Find (and unless dryRun, remove) leftover containers, networks and volumes",
)
async def gc(
    request: Request,
    service: ServiceDep,
    dry_run: Annotated[bool, Query(alias="dryRun")] = False,
) -> GcReport:
    service.require_engine()
    return await collect_garbage(
        service, service.backend, request.app.state.settings, dry_run=dry_run
    )
