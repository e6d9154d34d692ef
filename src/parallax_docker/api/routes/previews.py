"""``POST /agents/{id}/previews``: a link a browser can open to a port the agent listens on.

The proxying itself is api/previews.py (``/agents/{id}/ports/{port}/...`` with the token, and
``/previews/<ticket>/...``, the link made here).
"""

from __future__ import annotations

from fastapi import APIRouter

from parallax_docker.api.deps import RuntimeDep
from parallax_docker.file_models import PreviewRequest, PreviewResponse
from parallax_docker.models import ErrorResponse

router = APIRouter(prefix="/agents", tags=["previews"])

_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse} for status in (404, 409, 422, 503)
}


@router.post(
    "/{agent_id}/previews",
    response_model=PreviewResponse,
    responses=_ERRORS,
    summary="A browser link to a port the agent listens on (the API token stays out of it)",
    description=(
        "Open `path` on the service in a browser. It proxies HTTP and WebSocket to the port, "
        "for PARALLAX_PREVIEW_TTL_S, while the agent's container lives; the page is sandboxed "
        "and never sees the API token. With the token, `/agents/{id}/ports/{port}/...` serves "
        "the same without a link."
    ),
)
async def open_preview(agent_id: str, body: PreviewRequest, runtime: RuntimeDep) -> PreviewResponse:
    return runtime.previews.issue(agent_id, body.port)
