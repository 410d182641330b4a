"""The payrecon API: `uvicorn --factory api.main:create_app`."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from api.metrics import HTTP_LATENCY, HTTP_REQUESTS, register_invoice_metrics
from api.relay import Relayer
from api.routers import health, invoices, webhooks
from config import Settings, get_settings
from db.engine import make_engine
from db.migrate import migrate
from log import configure_logging
from temporal_connection import connect

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.payrecon_log_level)
        engine = make_engine(settings.database_url)
        migrate(engine)
        app.state.settings = settings
        app.state.engine = engine
        # Lazy: the API starts, and answers 503, while Temporal is still coming up.
        app.state.temporal = await connect(settings, lazy=True)
        relayer = Relayer(
            app.state.temporal,
            engine,
            lease=timedelta(seconds=settings.payrecon_relay_lease_seconds),
            scan_interval=settings.payrecon_relay_scan_seconds,
        )
        app.state.relayer = relayer
        relayer.start()
        collector = register_invoice_metrics(engine)
        log.info("api.started", temporal=settings.temporal_address)
        yield
        await relayer.stop()
        REGISTRY.unregister(collector)
        engine.dispose()

    app = FastAPI(
        title="payrecon",
        summary="Payment reconciliation for Paystack: one durable workflow per invoice.",
        version="0.1.0",
        lifespan=lifespan,
    )

    @app.middleware("http")
    async def bind_request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = route.path if isinstance(route, APIRoute) else "unmatched"
        HTTP_LATENCY.labels(request.method, path).observe(time.perf_counter() - started)
        HTTP_REQUESTS.labels(request.method, path, str(response.status_code)).inc()
        response.headers["x-request-id"] = request_id
        return response

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("api.unexpected_error", path=request.url.path)
        return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)

    app.include_router(invoices.router)
    app.include_router(webhooks.router)
    app.include_router(health.router)
    return app
