"""The application factory: ``create_app(settings, backend=None)``.

Nothing is built at import time; the backend, the service and the reconciler start in the
lifespan, so the service comes up even while the Docker engine is down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.types import ASGIApp

from parallax_docker import __version__
from parallax_docker.api.auth import BearerAuthMiddleware
from parallax_docker.api.errors import ContainErrorsMiddleware, install_error_handlers
from parallax_docker.api.guard import HostOriginGuardMiddleware
from parallax_docker.api.middleware import ApiPrefixMiddleware, BodyLimitMiddleware
from parallax_docker.api.openapi import document_common_responses
from parallax_docker.api.query import reject_unknown_query
from parallax_docker.api.request_log import RequestLogMiddleware
from parallax_docker.api.routes import agents, executions, gc, health, messages, prometheus, ws
from parallax_docker.backends.base import Backend
from parallax_docker.backends.factory import create_backend
from parallax_docker.config import Settings
from parallax_docker.origins import OriginPolicy
from parallax_docker.runtime.janitor import Janitor
from parallax_docker.runtime.messaging import MessagingService
from parallax_docker.runtime.reconciler import Reconciler
from parallax_docker.runtime.service import AgentService
from parallax_docker.runtime.store import Store, StoredEventBus
from parallax_docker.runtime.telemetry import PrometheusTelemetry

DESCRIPTION = """Runs CLI AI coding agents as isolated, hardened Docker containers.

Every route is also served under `/api` (for example `/api/agents`). Errors are
`{error, code, resolution}` with a stable `code`."""


class _App(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's own error middleware, which re-raises what it has answered.
        return ContainErrorsMiddleware(super().build_middleware_stack())


def create_app(settings: Settings, backend: Backend | None = None) -> FastAPI:
    engine = backend if backend is not None else create_backend(settings)
    telemetry = PrometheusTelemetry()
    store = Store.in_dir(settings.state_dir)
    service = AgentService(settings, engine, bus=StoredEventBus(store), telemetry=telemetry)
    messaging = MessagingService(settings, service, store)
    reconciler = Reconciler(service, engine)
    telemetry.watch(
        agents=lambda: [(r.status.value, r.labels.type) for r in service.registry],
        reconnects=lambda: reconciler.reconnects,
    )
    janitor = Janitor(service, engine, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.open()
        reconciler.start()
        janitor.start()
        if service.pool is not None:
            service.pool.start()
        try:
            yield
        finally:
            if service.pool is not None:
                # Idle pooled containers go with the service; claimed ones are agents.
                await service.pool.stop()
            await janitor.stop()
            await messaging.close()
            if settings.stop_agents_on_exit:
                await service.stop_all(reason="service-exit")
            await reconciler.stop()
            await engine.close()
            await store.close()

    app = _App(
        title="Parallax Docker Runtime",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Unknown query parameters are refused like unknown body fields.
        dependencies=[Depends(reject_unknown_query)],
    )
    app.state.settings = settings
    app.state.service = service
    app.state.reconciler = reconciler
    app.state.telemetry = telemetry
    app.state.janitor = janitor
    app.state.messaging = messaging
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(agents.router)
    app.include_router(prometheus.router)
    app.include_router(gc.router)
    app.include_router(messages.router)
    app.include_router(executions.router)
    app.include_router(ws.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.api_token is not None:
        # Outside the body limit: an unauthenticated body is never read.
        app.add_middleware(BearerAuthMiddleware, token=settings.api_token)
    document_common_responses(app, bearer=settings.api_token is not None)
    app.add_middleware(ApiPrefixMiddleware)
    # Before the token check and routing, after the request log (docs/security.md).
    app.add_middleware(
        HostOriginGuardMiddleware,
        policy=OriginPolicy(settings.allowed_hosts, settings.allowed_origins, settings.host),
        on_refusal=lambda code: telemetry.error(code, "api"),
    )
    app.add_middleware(RequestLogMiddleware)
    return app
