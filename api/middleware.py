"""Request id and HTTP metrics, as plain ASGI middleware: no extra task or stream per
request, which Starlette's BaseHTTPMiddleware would add to every webhook's answer."""

from __future__ import annotations

import time
import uuid

import structlog
from fastapi.routing import APIRoute
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import HTTP_LATENCY, HTTP_REQUESTS

REQUEST_ID_HEADER = "x-request-id"
# The method label comes from the client: anything else is one label, not one per word sent.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode())
        request_id = given.decode("latin-1")[:200] if given else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            route = scope.get("route")
            path = route.path if isinstance(route, APIRoute) else "unmatched"
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
            HTTP_LATENCY.labels(method, path).observe(time.perf_counter() - started)
            HTTP_REQUESTS.labels(method, path, str(status)).inc()
