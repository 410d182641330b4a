"""The sandbox FastAPI app: Paystack's API, a checkout page and /_sandbox controls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox import books, checkout, control, disputes, paystack_api, refunds
from sandbox.context import Sandbox
from sandbox.errors import PaystackError, handle_paystack_error
from sandbox.settings import SandboxSettings


class SameWithTrailingSlash:
    """Paystack answers `/transaction/totals/` as it answers `/transaction/totals` (client
    libraries call both): the same answer, not a redirect."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/"), "raw_path": path.rstrip("/").encode()}
        await self.app(scope, receive, send)


def create_app(settings: SandboxSettings | None = None) -> FastAPI:
    """One independent sandbox per call: state lives in the app, not in module globals."""
    sandbox = Sandbox.from_settings(settings or SandboxSettings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # One HTTP client for every webhook, bound to the serving event loop.
        sandbox.webhooks.open()
        try:
            yield
        finally:
            await sandbox.cancel_tasks()
            await sandbox.webhooks.aclose()

    app = FastAPI(
        title="Paystack sandbox",
        description="A local fake of the Paystack API for payrecon development and tests.",
        lifespan=lifespan,
        # Keep Paystack's own path space free of FastAPI's extras.
        docs_url="/_sandbox/docs",
        openapi_url="/_sandbox/openapi.json",
        redoc_url=None,
    )
    app.add_middleware(SameWithTrailingSlash)
    app.state.sandbox = sandbox
    app.add_exception_handler(PaystackError, handle_paystack_error)
    app.include_router(paystack_api.router)
    app.include_router(books.paystack_router)
    app.include_router(refunds.paystack_router)
    app.include_router(refunds.control_router)
    app.include_router(disputes.paystack_router)
    app.include_router(disputes.control_router)
    # Before control's /transactions/{reference}/... routes, which these do not clash with.
    app.include_router(books.control_router)
    app.include_router(control.router)
    app.include_router(checkout.router)
    return app
