"""Invoices: create (with its payment link), read, list, cancel."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine
from temporalio.client import (
    RPCTimeoutOrCancelledError,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.deps import (
    Caller,
    CallerDep,
    EngineDep,
    KeyCheckedFirst,
    SettingsDep,
    TemporalDep,
    current_caller,
)
from api.errors import refused, temporal_call, unavailable
from api.schemas import CreateInvoice, ErrorBody, InvoiceOut, InvoicePage
from db import queries
from db.models import Invoice
from domain.invoice import DEFAULT_CALLER, INVOICE_ID_PATTERN, InvoiceRequest, InvoiceStatus
from workflows.invoice import InvoiceWorkflow
from workflows.starter import invoice_start
from workflows.types import OpenInvoice, workflow_id_for

log = structlog.get_logger(__name__)

router = APIRouter(
    prefix="/invoices",
    tags=["invoices"],
    dependencies=[Depends(current_caller)],
    route_class=KeyCheckedFirst,
    responses={401: {"model": ErrorBody, "description": "Missing or invalid API key"}},
)

InvoiceId = Annotated[str, Path(pattern=INVOICE_ID_PATTERN, description="The invoice id")]


def invoice_id_for(caller: str, idempotency_key: str | None) -> str:
    """The same caller's same Idempotency-Key always names the same invoice, hence the same
    workflow; another caller's same key, another. The default caller's ids are those made
    before callers had names, so a create retried across that upgrade finds its invoice."""
    if idempotency_key is None:
        return f"inv-{secrets.token_hex(12)}"
    # Keys are printable ASCII: with a NUL between, no named caller's input is a bare key.
    scoped = idempotency_key if caller == DEFAULT_CALLER else f"{caller}\0{idempotency_key}"
    return f"inv-{hashlib.sha256(scoped.encode()).hexdigest()[:24]}"


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an invoice and get its payment link",
    responses={
        200: {"model": InvoiceOut, "description": "The invoice this Idempotency-Key created"},
        400: {"model": ErrorBody, "description": "The body could not be read as JSON"},
        413: {"model": ErrorBody, "description": "The body is over 64 KiB"},
        409: {"model": ErrorBody, "description": "Idempotency-Key reused with another body"},
        422: {"model": ErrorBody, "description": "Invalid input"},
        503: {"model": ErrorBody, "description": "Paystack or Temporal unavailable"},
    },
)
async def create_invoice(
    body: CreateInvoice,
    response: Response,
    caller: CallerDep,
    settings: SettingsDep,
    engine: EngineDep,
    temporal: TemporalDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="Repeat a create safely: the same key returns the same invoice",
        ),
    ] = None,
) -> InvoiceOut:
    invoice_id = invoice_id_for(caller.name, idempotency_key)
    request_id = uuid.uuid4().hex
    fingerprint = body.fingerprint()
    request = InvoiceRequest(
        invoice_id=invoice_id,
        customer_email=str(body.customer_email),
        amount=body.amount,
        currency=body.currency,
        due_at=body.resolve_due_at(datetime.now(UTC), settings.payrecon_default_due_in),
        description=body.description,
        metadata=body.metadata or {},
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        caller=caller.name,
    )
    start = invoice_start(settings, request, request_id=request_id)
    bound = log.bind(invoice_id=invoice_id, workflow_id=workflow_id_for(invoice_id))
    deadline = asyncio.get_running_loop().time() + settings.payrecon_create_timeout_seconds
    try:
        async with temporal_call(deadline):
            opened = await temporal.execute_update_with_start_workflow(
                InvoiceWorkflow.open_invoice,
                OpenInvoice(fingerprint=fingerprint, request_id=request_id),
                start_workflow_operation=start,
            )
    except WorkflowAlreadyStartedError:
        # The invoice's workflow has completed: answer from its record.
        return await _existing_invoice(engine, invoice_id, fingerprint, response)
    if not opened.created:
        response.status_code = status.HTTP_200_OK
    bound.info("invoice.opened", created=opened.created)
    return InvoiceOut.model_validate(opened.invoice)


async def _existing_invoice(
    engine: Engine, invoice_id: str, fingerprint: str, response: Response
) -> InvoiceOut:
    row = await run_in_threadpool(queries.get_invoice, engine, invoice_id)
    if row is None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="this Idempotency-Key is spent")
    if row.fingerprint != fingerprint:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail="this Idempotency-Key was already used with a different request body",
        )
    response.status_code = status.HTTP_200_OK
    return InvoiceOut.model_validate(row)


@router.get("", summary="List invoices, newest first")
def list_invoices(
    engine: EngineDep,
    caller: CallerDep,
    status_filter: Annotated[InvoiceStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> InvoicePage:
    rows, total = queries.list_invoices(
        engine,
        status=status_filter.value if status_filter else None,
        limit=limit,
        offset=offset,
        caller=None if caller.operator else caller.name,
    )
    return InvoicePage(
        items=[InvoiceOut.model_validate(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/{invoice_id}",
    summary="Read one invoice",
    responses={404: {"model": ErrorBody, "description": "No such invoice"}},
)
def get_invoice(invoice_id: InvoiceId, engine: EngineDep, caller: CallerDep) -> InvoiceOut:
    return InvoiceOut.model_validate(_visible_invoice(engine, invoice_id, caller))


def _visible_invoice(engine: Engine, invoice_id: str, caller: Caller) -> Invoice:
    """The invoice, if this caller may see it; another caller's is as unknown as none."""
    row = queries.get_invoice(engine, invoice_id)
    if row is None or not caller.owns(row.caller):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no invoice {invoice_id}")
    return row


@router.post(
    "/{invoice_id}/cancel",
    summary="Cancel an unpaid invoice (after one last verify with Paystack)",
    responses={
        202: {"model": InvoiceOut, "description": "Cancel accepted; Paystack has not answered yet"},
        404: {"model": ErrorBody, "description": "No such invoice"},
        409: {"model": ErrorBody, "description": "The invoice is already final"},
        503: {"model": ErrorBody, "description": "Temporal unavailable"},
    },
)
async def cancel_invoice(
    invoice_id: InvoiceId,
    response: Response,
    settings: SettingsDep,
    engine: EngineDep,
    temporal: TemporalDep,
    caller: CallerDep,
) -> InvoiceOut:
    # Its row is written before its payment link is handed out: a caller can name no
    # invoice of theirs that has none.
    await run_in_threadpool(_visible_invoice, engine, invoice_id, caller)
    handle = temporal.get_workflow_handle(workflow_id_for(invoice_id))
    deadline = asyncio.get_running_loop().time() + settings.payrecon_create_timeout_seconds
    try:
        # Accepted means written to the workflow's history: from then on the cancel holds
        # whatever fails. Until then it may be lost (a server restart drops it), so a
        # timeout before acceptance is a 503 to retry, never a 202.
        async with temporal_call(deadline):
            update = await handle.start_update(
                InvoiceWorkflow.cancel, wait_for_stage=WorkflowUpdateStage.ACCEPTED
            )
    except RPCError as error:  # no open run: the invoice is final, or unknown
        row = await run_in_threadpool(queries.get_invoice, engine, invoice_id)
        if row is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, detail=f"no invoice {invoice_id}"
            ) from error
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"the invoice is already {row.status}"
        ) from error
    try:
        async with asyncio.timeout_at(deadline):
            snapshot = await update.result()
    except WorkflowUpdateFailedError as error:
        raise refused(error) from error
    except (TimeoutError, RPCTimeoutOrCancelledError, RPCError) as error:
        # Accepted, and the workflow finishes it: the last verify is still under way.
        row = await run_in_threadpool(queries.get_invoice, engine, invoice_id)
        if row is None:  # accepted while its first record was being written
            raise unavailable(error) from error
        response.status_code = status.HTTP_202_ACCEPTED
        return InvoiceOut.model_validate(row)
    log.info("invoice.cancel_answered", invoice_id=invoice_id, status=snapshot.status.value)
    return InvoiceOut.model_validate(snapshot)
