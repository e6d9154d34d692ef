"""POST /gc: report, and remove, what agents left behind."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from parallax_docker.api.deps import RuntimeDep
from parallax_docker.models import ErrorResponse, GcReport

router = APIRouter(tags=["maintenance"])


@router.post(
    "/gc",
    response_model=GcReport,
    responses={503: {"model": ErrorResponse}},
    summary="Find (and unless dryRun, remove) leftover containers, networks and volumes",
)
async def gc(
    runtime: RuntimeDep,
    dry_run: Annotated[bool, Query(alias="dryRun")] = False,
) -> GcReport:
    return await runtime.gc.collect(dry_run=dry_run)
