"""Request-scoped access to the service built at start-up.

Dependencies are async: FastAPI runs a plain `def` dependency in a worker thread.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from parallax_docker.runtime.service import AgentService


async def get_service(request: Request) -> AgentService:
    service: AgentService = request.app.state.service
    return service


ServiceDep = Annotated[AgentService, Depends(get_service)]
