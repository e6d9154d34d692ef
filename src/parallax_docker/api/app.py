"""The application factory: ``create_app(settings, backend=None)``.

Nothing is built at import time; the backend, the service and the reconciler start in the
lifespan, so the service comes up even while the Docker engine is down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from parallax_docker import __version__
from parallax_docker.api.errors import install_error_handlers
from parallax_docker.api.middleware import ApiPrefixMiddleware, BodyLimitMiddleware
from parallax_docker.api.routes import agents, health
from parallax_docker.backends.base import Backend
from parallax_docker.backends.factory import create_backend
from parallax_docker.config import Settings
from parallax_docker.runtime.reconciler import Reconciler
from parallax_docker.runtime.service import AgentService

DESCRIPTION = """Runs CLI AI coding agents as isolated, hardened Docker containers.

Every route is also served under `/api` (for example `/api/agents`). Errors are
`{error, code, resolution}` with a stable `code`."""


def create_app(settings: Settings, backend: Backend | None = None) -> FastAPI:
    engine = backend if backend is not None else create_backend(settings)
    service = AgentService(settings, engine)
    reconciler = Reconciler(service, engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reconciler.start()
        try:
            yield
        finally:
            await reconciler.stop()
            await engine.close()

    app = FastAPI(
        title="Parallax Docker Runtime",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.service = service
    app.state.reconciler = reconciler
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(agents.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ApiPrefixMiddleware)
    return app
