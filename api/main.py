"""The payrecon API: `uvicorn --factory api.main:create_app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from api.deps import allow_metrics, bearer
from api.errors import invalid_request
from api.limits import BodyLimitMiddleware
from api.metrics import register_invoice_metrics
from api.middleware import RequestContextMiddleware
from api.rate_limits import CallerRateLimits, publish_limits
from api.routers import (
    checkout,
    codec,
    disputes,
    events,
    health,
    invoices,
    reconciliation,
    refunds,
    webhook_endpoints,
    webhooks,
)
from config import Settings, get_settings
from db.engine import checkpointing, make_engine
from db.migrate import migrate
from inbox.relayer import Relayer
from lifecycle import freeze_startup_objects
from log import configure_logging
from paystack.client import make_paystack_client
from temporal_config import connect

log = structlog.get_logger(__name__)


def _without_docs(**options: Any) -> FastAPI:
    return FastAPI(docs_url=None, redoc_url=None, openapi_url=None, **options)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.payrecon_log_level)
        # Webhook answers wait on inserts, so no insert waits on a log checkpoint.
        engine = make_engine(settings.database_url, checkpoint_in_background=True)
        migrate(engine)
        app.state.settings = settings
        app.state.engine = engine
        app.state.rate_limits = CallerRateLimits(settings.payrecon_caller_rate_limit)
        publish_limits(settings)
        # Lazy: the API starts, and answers 503, while Temporal is still coming up.
        app.state.temporal = await connect(lazy=True, settings=settings)
        # For what needs no writer: Paystack's upload URL for a dispute's evidence.
        app.state.paystack = make_paystack_client(settings)
        relayer = Relayer(
            app.state.temporal,
            engine,
            settings,
            lease=timedelta(seconds=settings.payrecon_relay_lease_seconds),
            scan_interval=settings.payrecon_relay_scan_seconds,
        )
        app.state.relayer = relayer
        relayer.start()
        collector = register_invoice_metrics(engine, settings.payrecon_metrics_refresh_seconds)
        freeze_startup_objects()
        log.info("api.started", temporal=app.state.temporal.service_client.config.target_host)
        async with checkpointing(engine):
            yield
        await relayer.stop()
        REGISTRY.unregister(collector)
        await app.state.paystack.aclose()
        engine.dispose()

    # Swagger UI and ReDoc from files a package ships, not from a CDN; or no docs at all.
    app = (FastAPIOffline if settings.payrecon_docs else _without_docs)(
        title="payrecon",
        summary="Payment reconciliation for Paystack: one durable workflow per invoice.",
        version="0.1.0",
        lifespan=lifespan,
    )

    # The last added runs first: the request's context and metrics cover a 413 as well.
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(RequestContextMiddleware)

    @app.get("/metrics", include_in_schema=False)
    def metrics(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Response:
        allow_metrics(request, settings, credentials)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    app.add_exception_handler(RequestValidationError, invalid_request)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("api.unexpected_error", path=request.url.path)
        return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)

    app.include_router(invoices.router)
    app.include_router(refunds.router)
    app.include_router(disputes.router)
    app.include_router(webhooks.router)
    app.include_router(webhook_endpoints.router)
    app.include_router(events.router)
    app.include_router(health.router)
    app.include_router(codec.router)
    app.include_router(checkout.router)
    app.include_router(reconciliation.router)
    return app
