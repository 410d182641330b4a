"""Refunds: ask for one on an invoice, read them, and retry one that needs attention.

Every refund is made by the invoice's workflow, its one writer (woken if the invoice's run
has completed): concurrent requests, from any number of API processes, are taken from what
is refundable one at a time, so no more than was paid is ever refunded."""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated

import structlog
from fastapi import APIRouter, Body, Depends, Header, HTTPException, Path, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from api.after_payment_schemas import CreateRefund, RefundOut, RefundPage, RetryRefund
from api.deps import (
    Caller,
    CallerDep,
    EngineDep,
    KeyCheckedFirst,
    Limit,
    Offset,
    SettingsDep,
    TemporalDep,
    current_caller,
)
from api.errors import temporal_call
from api.routers.invoices import (
    IDEMPOTENCY_KEY_PATTERN,
    InvoiceId,
    invoice_seen_by,
    visible_invoice,
)
from api.schemas import AUTHENTICATED, WITH_BODY, ErrorBody
from db import bank_accounts, queries
from db.bank_accounts import BankAccount
from db.models import InvoiceRefund
from db.projection import snapshot_of
from domain.refunds import REFUND_ID_PATTERN, initiated_by_caller, refund_id_for_key
from workflows.invoice import InvoiceWorkflow
from workflows.starter import reach_invoice
from workflows.types import RefundAnswer, RefundRequest, RefundRetry

log = structlog.get_logger(__name__)

router = APIRouter(
    tags=["refunds"],
    dependencies=[Depends(current_caller)],
    route_class=KeyCheckedFirst,
    responses=AUTHENTICATED,
)

RefundId = Annotated[str, Path(pattern=REFUND_ID_PATTERN, description="The refund id")]


@router.post(
    "/invoices/{invoice_id}/refunds",
    status_code=status.HTTP_201_CREATED,
    summary="Refund an invoice's payment, in full or in part",
    responses={
        200: {"model": RefundOut, "description": "The refund this Idempotency-Key made"},
        202: {"model": RefundOut, "description": "Asked; Paystack has not answered yet"},
        **WITH_BODY,
        404: {"model": ErrorBody, "description": "No such invoice"},
        409: {
            "model": ErrorBody,
            "description": "Nothing refundable, more than is refundable, Paystack refused, "
            "or the Idempotency-Key was used with another body",
        },
        422: {"model": ErrorBody, "description": "Invalid input"},
        503: {"model": ErrorBody, "description": "Temporal unavailable (retry with the same key)"},
    },
)
async def create_refund(
    invoice_id: InvoiceId,
    response: Response,
    caller: CallerDep,
    settings: SettingsDep,
    engine: EngineDep,
    temporal: TemporalDep,
    body: Annotated[CreateRefund | None, Body()] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Repeat a refund safely: the same key returns the same refund",
        ),
    ] = None,
) -> RefundOut:
    """201 once Paystack has queued the refund; 202 with status `requested` when Paystack
    has not answered within a few seconds (payrecon goes on asking, and the refund moves as
    Paystack says). Payrecon's refund id is written in Paystack's `merchant_note`."""
    body = body or CreateRefund()
    row = await run_in_threadpool(visible_invoice, engine, invoice_id, caller)
    refund_id = (
        refund_id_for_key(caller.name, invoice_id, idempotency_key)
        if idempotency_key is not None
        else f"rf_{secrets.token_hex(12)}"
    )
    request = RefundRequest(
        refund_id=refund_id,
        initiated_by=initiated_by_caller(caller.name),
        fingerprint=body.fingerprint(),
        amount=body.amount,
        reason=body.reason,
        idempotency_key=idempotency_key,
    )
    deadline = asyncio.get_running_loop().time() + settings.payrecon_create_timeout_seconds
    async with temporal_call(deadline):
        answer: RefundAnswer = await reach_invoice(
            temporal, settings, snapshot_of(row), InvoiceWorkflow.refund, request
        )
    refund = answer.refund
    if not answer.created:
        response.status_code = status.HTTP_200_OK
    elif refund.paystack_refund_id is None:
        response.status_code = status.HTTP_202_ACCEPTED
    log.info(
        "refund.answered",
        invoice_id=invoice_id,
        refund_id=refund.refund_id,
        status=refund.status.value,
        created=answer.created,
    )
    return RefundOut.model_validate(refund)


@router.get(
    "/invoices/{invoice_id}/refunds",
    summary="An invoice's refunds, oldest first",
    responses={404: {"model": ErrorBody, "description": "No such invoice"}},
)
def list_refunds(
    invoice_id: InvoiceId,
    engine: EngineDep,
    caller: CallerDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> RefundPage:
    visible_invoice(engine, invoice_id, caller)
    rows, total = queries.list_refunds(engine, invoice_id, limit=limit, offset=offset)
    return RefundPage(
        items=[RefundOut.model_validate(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/refunds/{refund_id}",
    summary="Read one refund",
    responses={404: {"model": ErrorBody, "description": "No such refund"}},
)
def get_refund(refund_id: RefundId, engine: EngineDep, caller: CallerDep) -> RefundOut:
    return RefundOut.model_validate(visible_refund(engine, refund_id, caller))


def visible_refund(engine: Engine, refund_id: str, caller: Caller) -> InvoiceRefund:
    """The refund, if this caller may see its invoice; another caller's is as unknown as
    none."""
    row = queries.get_refund(engine, refund_id)
    if row is None or invoice_seen_by(engine, row.invoice_id, caller) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no refund {refund_id}")
    return row


@router.post(
    "/refunds/{refund_id}/retry",
    summary="Send the customer's bank account for a refund that needs attention",
    responses={
        **WITH_BODY,
        404: {"model": ErrorBody, "description": "No such refund"},
        409: {
            "model": ErrorBody,
            "description": "The refund does not need attention, or Paystack refused the retry",
        },
        422: {"model": ErrorBody, "description": "Invalid input"},
        503: {"model": ErrorBody, "description": "Paystack or Temporal unavailable"},
    },
)
async def retry_refund(
    refund_id: RefundId,
    body: RetryRefund,
    caller: CallerDep,
    settings: SettingsDep,
    engine: EngineDep,
    temporal: TemporalDep,
) -> RefundOut:
    """Forwards Paystack's `retry_with_customer_details` through the invoice's workflow;
    the refund then moves on as Paystack says. The account is never logged, and is stored
    only sealed, for as long as this request takes."""
    refund = await run_in_threadpool(visible_refund, engine, refund_id, caller)
    row = await run_in_threadpool(visible_invoice, engine, refund.invoice_id, caller)
    account = BankAccount(account_number=body.account_number, bank_id=body.bank_id)
    # Sealed in the database for as long as this request: the workflow sees only its id.
    account_id = await run_in_threadpool(
        bank_accounts.keep, engine, settings.codec_keys, refund_id, account
    )
    retry = RefundRetry(refund_id=refund_id, currency=body.currency.value, account_id=account_id)
    deadline = asyncio.get_running_loop().time() + settings.payrecon_create_timeout_seconds
    try:
        async with temporal_call(deadline):
            answer: RefundAnswer = await reach_invoice(
                temporal, settings, snapshot_of(row), InvoiceWorkflow.retry_refund, retry
            )
    finally:
        await run_in_threadpool(bank_accounts.forget, engine, account_id)
    log.info("refund.retried", refund_id=refund_id, status=answer.refund.status.value)
    return RefundOut.model_validate(answer.refund)
