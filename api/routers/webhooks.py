"""Paystack webhooks: check the signature, then commit the delivery before answering 200.
A `charge.success` for one of our invoices is committed as queued and relayed to its
workflow by the relayer, so by default Paystack's answer waits on the database, never on
Temporal. With PAYRECON_WEBHOOK_ACK=signalled it also waits for the signal (503 if
Temporal does not take it)."""

from __future__ import annotations

import asyncio

import structlog
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import EngineDep, RelayerDep, SettingsDep
from api.forwarded import is_within, request_client
from api.schemas import ErrorBody, PaystackEvent, WebhookAck
from config import Settings
from inbox.intake import accept
from inbox.metrics import WEBHOOK_DELIVERIES
from inbox.outcomes import Intake, Relay
from paystack.events import MalformedWebhook, parse_webhook
from paystack.signature import SIGNATURE_HEADER, is_valid_signature

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def _allowed(address: str | None, settings: Settings) -> bool:
    networks = settings.payrecon_webhook_allowed_ips
    return not networks or (address is not None and is_within(address, networks))


def _is_json(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return media_type == "application/json"


@router.post(
    "/paystack",
    summary="Receive a Paystack webhook",
    response_model=WebhookAck,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PaystackEvent.model_json_schema()}},
        },
        "parameters": [
            {
                "name": SIGNATURE_HEADER,
                "in": "header",
                "required": True,
                "description": "HMAC-SHA512 of the raw body, keyed with the secret key",
                "schema": {"type": "string"},
            }
        ],
    },
    responses={
        400: {"model": ErrorBody, "description": "Body is not a Paystack event"},
        401: {"model": ErrorBody, "description": "Bad or missing x-paystack-signature"},
        403: {"model": ErrorBody, "description": "Source address not allowed"},
        413: {"model": ErrorBody, "description": "Body over 1 MiB"},
        415: {"model": ErrorBody, "description": "Content-type is not application/json"},
        503: {
            "model": WebhookAck,
            "description": "PAYRECON_WEBHOOK_ACK=signalled only: Temporal did not take the "
            "signal (the delivery is kept and relayed later; Paystack retries too)",
        },
    },
)
async def paystack_webhook(
    request: Request, settings: SettingsDep, engine: EngineDep, relayer: RelayerDep
) -> JSONResponse:
    address = request_client(request, settings)
    if not _allowed(address, settings):
        log.warning("webhook.source_refused", client=address)
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="webhooks are not accepted from here")
    # At most 1 MiB: api/limits.py cuts off a longer body as it streams in.
    body = await request.body()
    secret = settings.paystack_secret_key.get_secret_value()
    if not is_valid_signature(body, request.headers.get(SIGNATURE_HEADER), secret):
        log.warning(
            "webhook.bad_signature",
            client=address,
            has_signature=SIGNATURE_HEADER in request.headers,
            body_bytes=len(body),
        )
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="invalid webhook signature")
    if not _is_json(request):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail="content-type must be application/json"
        )
    try:
        event = parse_webhook(body)
    except MalformedWebhook as error:
        log.warning("webhook.malformed", error=str(error))
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(error)) from error

    bound = log.bind(invoice_id=event.reference, paystack_event=event.event)
    # One trip to a thread for both the lookup and the insert: each trip waits for a core.
    decided, delivery_id = await run_in_threadpool(
        accept, engine, event, body, relayer.lease_until()
    )
    WEBHOOK_DELIVERIES.labels(outcome=decided.value).inc()
    bound.info("webhook.received", outcome=decided.value, delivery_id=delivery_id)
    if decided is not Intake.QUEUED:
        return JSONResponse({"outcome": decided.value})
    relayed = relayer.submit(delivery_id, event)
    if settings.payrecon_webhook_ack == "committed":
        return JSONResponse({"outcome": decided.value})
    # Shielded: a caller who hangs up does not cancel the signal.
    signalled = await asyncio.shield(relayed)
    if signalled is None or signalled is Relay.TEMPORAL_UNAVAILABLE:
        unavailable = Relay.TEMPORAL_UNAVAILABLE.value
        return JSONResponse({"outcome": unavailable}, status.HTTP_503_SERVICE_UNAVAILABLE)
    return JSONResponse({"outcome": signalled.value})
