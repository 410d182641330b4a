"""The codec endpoint: Temporal's remote codec protocol, so the Temporal UI (and the
`temporal` CLI's `--codec-endpoint`) can show the payloads that payrecon keeps encrypted.

    POST /codec/decode    {"payloads": [{"metadata": {...}, "data": "..."}]}  (protobuf JSON)
    POST /codec/encode    the same shape, both ways

It decrypts for whoever may call it, and `require_codec_access` alone decides who. Browsers
may call it from the Temporal UI's origin only (PAYRECON_TEMPORAL_UI_ORIGIN): every answer,
errors and preflights included, carries CORS headers for that origin and for no other.
Not in the OpenAPI document: it is the Temporal UI's, not the API's clients'.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials
from google.protobuf import json_format
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from api.deps import SettingsDep, TemporalDep, bearer, get_settings
from api.forwarded import request_client, request_from_this_machine
from config import Settings
from temporal_codec import CodecError, decode_for_display

log = structlog.get_logger(__name__)

ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"


def _cors_headers(request: Request, settings: Settings, *, preflight: bool) -> dict[str, str]:
    # The answer depends on the Origin: caches must keep one per origin.
    headers = {"Vary": "Origin"}
    origin = request.headers.get("origin")
    if origin is None or origin != settings.temporal_ui_origin:
        return headers
    headers |= {
        "Access-Control-Allow-Origin": origin,
        # The UI may be set to send its cookies or its login's access token.
        "Access-Control-Allow-Credentials": "true",
    }
    if preflight:
        headers |= {
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600",
        }
    return headers


class UiCors(APIRoute):
    """Routes whose every answer, a refusal too, carries the UI's CORS headers: without
    them the UI sees a network error instead of the reason."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def with_cors(request: Request) -> Response:
            try:
                response = await handle(request)
            except StarletteHTTPException as error:
                response = await http_exception_handler(request, error)
            preflight = request.method == "OPTIONS"
            response.headers.update(
                _cors_headers(request, get_settings(request), preflight=preflight)
            )
            return response

        return with_cors


router = APIRouter(prefix="/codec", tags=["codec"], include_in_schema=False, route_class=UiCors)


def require_codec_access(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    settings: SettingsDep,
) -> None:
    """Who may have payloads decrypted: a holder of a PAYRECON_CODEC_TOKENS token. With no
    token set: this machine in development mode (make run's UI), and nobody outside it."""
    tokens = settings.payrecon_codec_tokens
    if tokens:
        given = credentials.credentials.encode() if credentials else b""
        # Compare against every token, so the time taken says nothing about which matched.
        matches = [
            hmac.compare_digest(given, token.get_secret_value().encode()) for token in tokens
        ]
        if not credentials or not any(matches):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="the codec needs 'Authorization: Bearer <a PAYRECON_CODEC_TOKENS token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return
    if not settings.payrecon_development_mode:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="the codec endpoint is off: set PAYRECON_CODEC_TOKENS to serve it",
        )
    if not request_from_this_machine(request, settings):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="without PAYRECON_CODEC_TOKENS the codec serves this machine only",
        )


def get_codec(temporal: TemporalDep) -> PayloadCodec:
    """The API's own Temporal client's codec: the same keys as every payrecon process."""
    codec = temporal.data_converter.payload_codec
    assert codec is not None, "payrecon's clients always have the codec"
    return codec


CodecDep = Annotated[PayloadCodec, Depends(get_codec)]
Namespace = Annotated[str | None, Header(alias="X-Namespace")]


async def _read_payloads(request: Request) -> list[Payload]:
    # The body limit (api/limits.py) holds while this reads.
    body = await request.body()
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, detail=f"the body is not valid JSON: {error}"
        ) from None
    try:
        if not isinstance(document, dict):
            raise json_format.ParseError("not an object")
        return list(json_format.ParseDict(document, Payloads()).payloads)
    except (json_format.ParseError, RecursionError) as error:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail='the body is {"payloads": [{"metadata": {name: base64}, "data": base64}]}: '
            f"{error}",
        ) from None


def _answer(payloads: Sequence[Payload]) -> Response:
    document = {"payloads": [json_format.MessageToDict(payload) for payload in payloads]}
    return Response(json.dumps(document), media_type="application/json")


@router.post("/decode", dependencies=[Depends(require_codec_access)])
async def decode(
    request: Request, codec: CodecDep, settings: SettingsDep, namespace: Namespace = None
) -> Response:
    payloads = await _read_payloads(request)
    try:
        decoded = await decode_for_display(codec, payloads)
    except CodecError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(error)) from None
    # Who had what decrypted: an audit trail, never the contents.
    log.info(
        "codec.decoded",
        payloads=len(payloads),
        namespace=namespace,
        client=request_client(request, settings),
    )
    return _answer(decoded)


@router.post("/encode", dependencies=[Depends(require_codec_access)])
async def encode(request: Request, codec: CodecDep) -> Response:
    return _answer(await codec.encode(await _read_payloads(request)))


@router.options("/decode")
@router.options("/encode")
async def preflight() -> Response:
    # The CORS headers, for the UI's origin alone, are UiCors's.
    return Response(status_code=status.HTTP_204_NO_CONTENT)
