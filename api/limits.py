"""Request body limits, enforced while the body streams in: a declared length over the
limit is refused before a byte is read, and a body sent without one (chunked) is cut off
at the first chunk past it. Nothing of a too-large body is ever held in memory.

A JSON body is also refused (400) when a string in it spells a lone UTF-16 surrogate
(`"\\ud800"`): Python parses it, yet it is no text, and it would fail only later, where it
is stored or sent on, after other work was done."""

from __future__ import annotations

import re

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


# Each escape of a JSON string, in order: a `\\\\` is one escape, so `\\\\ud800` is no
# surrogate.
JSON_ESCAPE = re.compile(rb"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)
NOT_TEXT = "the body holds a lone UTF-16 surrogate (such as \\ud800), which is not text"


def has_lone_surrogate(body: bytes | bytearray) -> bool:
    """Whether a `\\uD800`-`\\uDFFF` escape in `body` is not one half of a pair."""
    if b"\\u" not in body:
        return False
    high_ends = -1  # where the last unpaired high surrogate's escape ended
    for escape in JSON_ESCAPE.finditer(body):
        unit = int(escape[1], 16) if escape[1] else None
        paired_low = unit is not None and 0xDC00 <= unit <= 0xDFFF
        if high_ends >= 0 and not (paired_low and escape.start() == high_ends):
            return True
        if high_ends >= 0:
            high_ends = -1
            continue
        if paired_low:
            return True
        if unit is not None and 0xD800 <= unit <= 0xDBFF:
            high_ends = escape.end()
    return high_ends >= 0


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
        content_type = Headers(scope=scope).get("content-type", "")
        # Within the limit, so held whole only to look at it once it is complete.
        json_body: bytearray | None = bytearray() if "json" in content_type else None

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    # Raised where the route reads its body: the app's handlers answer it.
                    raise too_large(limit)
                if json_body is not None:
                    json_body.extend(chunk)
                    if not message.get("more_body", False) and has_lone_surrogate(json_body):
                        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=NOT_TEXT)
            return message

        await self.app(scope, counted_receive, send)
