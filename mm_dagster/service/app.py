"""The monitoring service (`mm serve`): dashboard pages, HTTP ingestion, results API and
Prometheus metrics over one deployment's stores, beside the Dagster webserver."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from mm_dagster.core.clock import Clock, utcnow
from mm_dagster.service import ingest_api, pages, prometheus, results_api, static, window_page
from mm_dagster.service.settings import ServiceSettings
from mm_dagster.service.state import ServiceState


def create_app(settings: ServiceSettings | None = None, clock: Clock = utcnow) -> FastAPI:
    """The ASGI app; its stores open at startup and close at shutdown. `clock` is "now" for
    the pages' default ranges (tests fix it)."""
    resolved = settings or ServiceSettings.resolve()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.mm = ServiceState.open(resolved, clock)
        try:
            yield
        finally:
            app.state.mm.close()

    app = FastAPI(
        title="mm_dagster monitoring service",
        summary="Model monitoring: endpoints, results, metrics and ingestion",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load their assets from a CDN; the service stays offline-safe
        redoc_url=None,
    )
    app.include_router(static.router)
    app.include_router(pages.router)
    app.include_router(results_api.router)
    app.include_router(window_page.router)
    app.include_router(ingest_api.router)
    app.include_router(prometheus.metrics_router(app, resolved))

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
