"""Request-scoped access to the service built at start-up."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from parallax_docker.runtime.service import AgentService


def get_service(request: Request) -> AgentService:
    service: AgentService = request.app.state.service
    return service


ServiceDep = Annotated[AgentService, Depends(get_service)]
