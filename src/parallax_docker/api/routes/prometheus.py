"""GET /metrics: the runtime's own metrics in the Prometheus text format.

Not to be confused with ``GET /agents/{id}/metrics``, one agent's resource use as JSON.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from parallax_docker.runtime.telemetry import CONTENT_TYPE, PrometheusTelemetry

router = APIRouter(tags=["observability"])


@router.get(
    "/metrics",
    response_class=Response,
    summary="Runtime metrics in the Prometheus text format",
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus exposition"}},
)
async def prometheus_metrics(request: Request) -> Response:
    telemetry: PrometheusTelemetry = request.app.state.telemetry
    return Response(telemetry.render(), media_type=CONTENT_TYPE)
