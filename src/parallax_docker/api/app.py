"""The application factory: ``create_app(settings, backend=None)``.

Nothing is built at import time; the runtime's parts start in the lifespan, so the service comes
up even while the Docker engine is down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.types import ASGIApp

from parallax_docker import __version__
from parallax_docker.api.auth import BearerAuthMiddleware
from parallax_docker.api.dashboard import DashboardMiddleware
from parallax_docker.api.errors import ContainErrorsMiddleware, install_error_handlers
from parallax_docker.api.guard import HostOriginGuardMiddleware
from parallax_docker.api.middleware import ApiPrefixMiddleware, BodyLimitMiddleware
from parallax_docker.api.openapi import document_common_responses
from parallax_docker.api.previews import PreviewEntrance, PreviewProxy, is_ticket_path
from parallax_docker.api.query import reject_unknown_query
from parallax_docker.api.request_log import RequestLogMiddleware
from parallax_docker.api.routes import (
    agents,
    executions,
    files,
    gc,
    health,
    messages,
    previews,
    prometheus,
    threads,
    ws,
)
from parallax_docker.backends.capabilities import Deployment
from parallax_docker.backends.factory import create_deployment
from parallax_docker.config import Settings
from parallax_docker.mcp_server.http import McpEndpoint, McpEntrance
from parallax_docker.origins import OriginPolicy
from parallax_docker.runtime.runtime import Runtime
from parallax_docker.runtime.store import Store
from parallax_docker.runtime.telemetry import PrometheusTelemetry

DESCRIPTION = """Runs CLI AI coding agents as isolated, hardened Docker containers.

Every route is also served under `/api` (for example `/api/agents`). Errors are
`{error, code, resolution}` with a stable `code`."""


class _App(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's own error middleware, which re-raises what it has answered.
        return ContainErrorsMiddleware(super().build_middleware_stack())


def create_app(settings: Settings, deployment: Deployment | None = None) -> FastAPI:
    telemetry = PrometheusTelemetry()
    runtime = Runtime(
        settings,
        deployment if deployment is not None else create_deployment(settings),
        store=Store.in_dir(settings.state_dir),
        telemetry=telemetry,
    )
    telemetry.watch(
        agents=lambda: [(r.status.value, r.labels.type) for r in runtime.registry],
        reconnects=lambda: runtime.reconciler.reconnects,
    )

    proxy = PreviewProxy(runtime)
    token = settings.api_token.get_secret_value() if settings.api_token is not None else None
    mcp = McpEndpoint(token)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        await mcp.start()
        try:
            yield
        finally:
            await mcp.stop()
            await proxy.close()
            await runtime.stop()

    app = _App(
        title="Parallax Docker Runtime",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Unknown query parameters are refused like unknown body fields.
        dependencies=[Depends(reject_unknown_query)],
    )
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.telemetry = telemetry
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(agents.router)
    app.include_router(prometheus.router)
    app.include_router(gc.router)
    app.include_router(messages.router)
    app.include_router(executions.router)
    app.include_router(threads.router)
    app.include_router(ws.router)
    app.include_router(files.router)
    app.include_router(previews.router)
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_body_bytes, streamed=files.is_upload
    )
    # Previews with the token (/agents/{id}/ports/{port}/...), which stream their bodies, and
    # the MCP endpoint (/mcp, docs/mcp.md).
    app.add_middleware(PreviewEntrance, proxy=proxy, ticket=False)
    app.add_middleware(McpEntrance, endpoint=mcp)
    if settings.api_token is not None:
        # Outside the body limit: an unauthenticated body is never read.
        app.add_middleware(BearerAuthMiddleware, token=settings.api_token)
    # The dashboard's files need no token (the page asks for it; docs/dashboard.md), nor do
    # preview links, which carry a ticket for one port instead (api/previews.py).
    app.add_middleware(DashboardMiddleware)
    app.add_middleware(PreviewEntrance, proxy=proxy, ticket=True)
    document_common_responses(app, bearer=settings.api_token is not None)
    app.add_middleware(ApiPrefixMiddleware)
    # Before the token check and routing, after the request log (docs/security.md).
    app.add_middleware(
        HostOriginGuardMiddleware,
        policy=OriginPolicy(settings.allowed_hosts, settings.allowed_origins, settings.host),
        on_refusal=lambda code: telemetry.error(code, "api"),
        host_only=is_ticket_path,
    )
    app.add_middleware(RequestLogMiddleware)
    mcp.bind(app)
    return app
