"""Request body limits, enforced while the body streams in: a declared length over the
limit is refused before a byte is read, and a body sent without one (chunked) is cut off
at the first chunk past it. Nothing of a too-large body is ever held in memory."""

from __future__ import annotations

from fastapi import HTTPException, status
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KIB = 1024
MIB = 1024 * KIB
# JSON API routes take small documents; Paystack's webhooks are larger (a transfer batch);
# the Temporal UI sends the codec whole workflow inputs and results.
DEFAULT_LIMIT = 64 * KIB
LIMITS_BY_PREFIX: tuple[tuple[str, int], ...] = (("/webhooks/", 1 * MIB), ("/codec/", 4 * MIB))


def body_limit(path: str) -> int:
    for prefix, limit in LIMITS_BY_PREFIX:
        if path.startswith(prefix):
            return limit
    return DEFAULT_LIMIT


def _described(limit: int) -> str:
    return f"{limit // MIB} MiB" if limit % MIB == 0 else f"{limit // KIB} KiB"


def too_large(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE, detail=f"the body is over {_described(limit)}"
    )


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"])
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            refusal = too_large(limit)
            await JSONResponse({"detail": refusal.detail}, refusal.status_code)(
                scope, receive, send
            )
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised where the route reads its body: the app's handlers answer it.
                    raise too_large(limit)
            return message

        await self.app(scope, counted_receive, send)
