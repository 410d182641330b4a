"""Disputes of an invoice's payment: where to upload evidence, and the merchant's answer.

A dispute is learned from Paystack's `charge.dispute.*` webhooks by the invoice's workflow,
and shows on the invoice (`disputes`). The answer goes through that workflow, its one writer,
which records what Paystack says after it (and, for an accepted dispute, the refund Paystack
makes)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from api.after_payment_schemas import ResolveDispute, UploadUrlOut
from api.deps import (
    Caller,
    CallerDep,
    EngineDep,
    KeyCheckedFirst,
    PaystackDep,
    SettingsDep,
    TemporalDep,
    current_caller,
)
from api.errors import temporal_call
from api.routers.invoices import invoice_seen_by, visible_invoice
from api.schemas import AUTHENTICATED, WITH_BODY, DisputeOut, ErrorBody
from db import queries
from db.models import InvoiceDispute
from db.projection import snapshot_of
from paystack.client import PaystackError
from paystack.events import MAX_ID
from workflows.invoice import InvoiceWorkflow
from workflows.starter import reach_invoice
from workflows.types import DisputeAnswer, DisputeDecision

log = structlog.get_logger(__name__)

router = APIRouter(
    prefix="/disputes",
    tags=["disputes"],
    dependencies=[Depends(current_caller)],
    route_class=KeyCheckedFirst,
    responses=AUTHENTICATED,
)

DisputeId = Annotated[int, Path(ge=1, le=MAX_ID, description="Paystack's dispute id")]


def visible_dispute(engine: Engine, dispute_id: int, caller: Caller) -> InvoiceDispute:
    """The dispute, if this caller may see its invoice; another caller's is as unknown as
    none."""
    row = queries.get_dispute(engine, dispute_id)
    if row is None or invoice_seen_by(engine, row.invoice_id, caller) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no dispute {dispute_id}")
    return row


@router.get(
    "/{dispute_id}/upload-url",
    summary="Where to upload evidence for a dispute (Paystack's signed URL)",
    responses={
        404: {"model": ErrorBody, "description": "No such dispute"},
        409: {"model": ErrorBody, "description": "The dispute is not open"},
        422: {"model": ErrorBody, "description": "Invalid file name"},
        502: {"model": ErrorBody, "description": "Paystack refused or failed"},
    },
)
async def upload_url(
    dispute_id: DisputeId,
    engine: EngineDep,
    caller: CallerDep,
    paystack: PaystackDep,
    filename: Annotated[str, Query(pattern=r"^[A-Za-z0-9._-]{1,200}$")],
) -> UploadUrlOut:
    """PUT the file to `signed_url`, then resolve with `uploaded_filename` = `file_name`."""
    dispute = await run_in_threadpool(visible_dispute, engine, dispute_id, caller)
    if not DisputeOut.model_validate(dispute).status.is_open:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"the dispute is {dispute.status}: not open"
        )
    try:
        url = await paystack.dispute_upload_url(dispute_id, filename)
    except PaystackError as error:
        log.warning("paystack.upload_url_failed", dispute_id=dispute_id, error=error.message)
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY, detail=f"Paystack: {error.message}"
        ) from error
    return UploadUrlOut(signed_url=url.signed_url, file_name=url.file_name)


@router.post(
    "/{dispute_id}/resolve",
    summary="Accept (with a refund) or decline a dispute",
    responses={
        **WITH_BODY,
        404: {"model": ErrorBody, "description": "No such dispute"},
        409: {
            "model": ErrorBody,
            "description": "The dispute is not open, or Paystack refused the answer",
        },
        422: {"model": ErrorBody, "description": "Invalid input"},
        503: {"model": ErrorBody, "description": "Paystack or Temporal unavailable"},
    },
)
async def resolve_dispute(
    dispute_id: DisputeId,
    body: ResolveDispute,
    caller: CallerDep,
    settings: SettingsDep,
    engine: EngineDep,
    temporal: TemporalDep,
) -> DisputeOut:
    """Forwards Paystack's `PUT /dispute/{id}/resolve` through the invoice's workflow and
    answers the dispute as Paystack then describes it."""
    dispute = await run_in_threadpool(visible_dispute, engine, dispute_id, caller)
    row = await run_in_threadpool(visible_invoice, engine, dispute.invoice_id, caller)
    decision = DisputeDecision(
        dispute_id=dispute_id,
        resolution=body.resolution.paystack,
        message=body.message,
        refund_amount=body.refund_amount,
        uploaded_filename=body.uploaded_filename,
        evidence=body.evidence,
    )
    deadline = asyncio.get_running_loop().time() + settings.payrecon_create_timeout_seconds
    async with temporal_call(deadline):
        answer: DisputeAnswer = await reach_invoice(
            temporal, settings, snapshot_of(row), InvoiceWorkflow.resolve_dispute, decision
        )
    log.info("dispute.resolved", dispute_id=dispute_id, status=answer.dispute.status.value)
    return DisputeOut.model_validate(answer.dispute)
