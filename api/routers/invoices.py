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
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.common import (
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.paystack import PAYSTACK_REJECTED, PAYSTACK_UNAUTHORIZED
from api.deps import EngineDep, SettingsDep, TemporalDep, require_api_key
from api.schemas import INVOICE_ID_PATTERN, CreateInvoice, ErrorBody, InvoiceOut, InvoicePage
from db import queries
from domain.invoice import InvoiceRequest, InvoiceStatus
from workflows.invoice import InvoiceWorkflow
from workflows.types import (
    ErrorType,
    InvoiceWorkflowInput,
    OpenInvoice,
    initial_search_attributes,
    workflow_id_for,
)

log = structlog.get_logger(__name__)

router = APIRouter(
    prefix="/invoices",
    tags=["invoices"],
    dependencies=[Depends(require_api_key)],
    responses={401: {"model": ErrorBody, "description": "Missing or invalid API key"}},
)

InvoiceId = Annotated[str, Path(pattern=INVOICE_ID_PATTERN, description="The invoice id")]


def invoice_id_for(idempotency_key: str | None) -> str:
    """The same Idempotency-Key always names the same invoice, hence the same workflow."""
    if idempotency_key is None:
        return f"inv-{secrets.token_hex(12)}"
    return f"inv-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]}"


def _temporal_unavailable(error: Exception) -> HTTPException:
    log.warning("temporal.unavailable", error=str(error))
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        detail="the workflow service is unavailable; retry (with the same Idempotency-Key)",
    )


def _creation_failed(error: WorkflowUpdateFailedError) -> HTTPException:
    cause = error.cause
    if not isinstance(cause, ApplicationError):
        return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="invoice not created")
    if cause.type == ErrorType.IDEMPOTENCY_CONFLICT:
        return HTTPException(status.HTTP_409_CONFLICT, detail=cause.message)
    if cause.type == PAYSTACK_REJECTED:
        return HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"Paystack refused the transaction: {cause.message}",
        )
    if cause.type == PAYSTACK_UNAUTHORIZED:
        log.error("paystack.secret_key_refused")
        return HTTPException(
            status.HTTP_502_BAD_GATEWAY,
            detail="Paystack refused payrecon's secret key; the operator must fix "
            "PAYSTACK_SECRET_KEY",
        )
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        detail=f"Paystack is unavailable ({cause.message}); retry with the same Idempotency-Key",
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an invoice and get its payment link",
    responses={
        200: {"model": InvoiceOut, "description": "The invoice this Idempotency-Key created"},
        400: {"model": ErrorBody, "description": "The body could not be read as JSON"},
        409: {"model": ErrorBody, "description": "Idempotency-Key reused with another body"},
        422: {"model": ErrorBody, "description": "Invalid input"},
        503: {"model": ErrorBody, "description": "Paystack or Temporal unavailable"},
    },
)
async def create_invoice(
    body: CreateInvoice,
    response: Response,
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
    invoice_id = invoice_id_for(idempotency_key)
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
    )
    start = WithStartWorkflowOperation(
        InvoiceWorkflow.run,
        InvoiceWorkflowInput(
            request=request,
            poll_schedule=settings.payrecon_poll_schedule,
            late_payment_window=settings.payrecon_late_payment_window,
            request_id=request_id,
            paystack_task_queue=settings.temporal_paystack_task_queue,
        ),
        id=workflow_id_for(invoice_id),
        task_queue=settings.temporal_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        # A completed invoice is never started again; a failed creation may be retried.
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        search_attributes=initial_search_attributes(request),
        static_summary=f"{body.currency} {body.amount / 100:.2f} from {body.customer_email}",
    )
    bound = log.bind(invoice_id=invoice_id, workflow_id=workflow_id_for(invoice_id))
    try:
        async with asyncio.timeout(settings.payrecon_create_timeout_seconds):
            opened = await temporal.execute_update_with_start_workflow(
                InvoiceWorkflow.open_invoice,
                OpenInvoice(fingerprint=fingerprint, request_id=request_id),
                start_workflow_operation=start,
            )
    except WorkflowUpdateFailedError as error:
        bound.info("invoice.create_refused", reason=str(error.cause))
        raise _creation_failed(error) from error
    except WorkflowAlreadyStartedError:
        # The invoice's workflow has completed: answer from its record.
        return await _existing_invoice(engine, invoice_id, fingerprint, response)
    except (TimeoutError, RPCTimeoutOrCancelledError, RPCError, RuntimeError) as error:
        # RuntimeError: the lazy client's connect failed.
        raise _temporal_unavailable(error) from error
    if not opened.created:
        response.status_code = status.HTTP_200_OK
    bound.info("invoice.opened", created=opened.created)
    return InvoiceOut.from_snapshot(opened.invoice)


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
    return InvoiceOut.from_row(row)


@router.get("", summary="List invoices, newest first")
def list_invoices(
    engine: EngineDep,
    status_filter: Annotated[InvoiceStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> InvoicePage:
    rows, total = queries.list_invoices(
        engine, status=status_filter.value if status_filter else None, limit=limit, offset=offset
    )
    return InvoicePage(
        items=[InvoiceOut.from_row(row) for row in rows], total=total, limit=limit, offset=offset
    )


@router.get(
    "/{invoice_id}",
    summary="Read one invoice",
    responses={404: {"model": ErrorBody, "description": "No such invoice"}},
)
def get_invoice(invoice_id: InvoiceId, engine: EngineDep) -> InvoiceOut:
    row = queries.get_invoice(engine, invoice_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no invoice {invoice_id}")
    return InvoiceOut.from_row(row)


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
) -> InvoiceOut:
    handle = temporal.get_workflow_handle(workflow_id_for(invoice_id))
    deadline = asyncio.get_running_loop().time() + settings.payrecon_create_timeout_seconds
    try:
        # Accepted means written to the workflow's history: from then on the cancel holds
        # whatever fails. Until then it may be lost (a server restart drops it), so a
        # timeout before acceptance is a 503 to retry, never a 202.
        async with asyncio.timeout_at(deadline):
            update = await handle.start_update(
                InvoiceWorkflow.cancel, wait_for_stage=WorkflowUpdateStage.ACCEPTED
            )
    except WorkflowUpdateFailedError as error:
        message = error.cause.message if isinstance(error.cause, ApplicationError) else str(error)
        raise HTTPException(status.HTTP_409_CONFLICT, detail=message) from error
    except (TimeoutError, RPCTimeoutOrCancelledError) as error:
        raise _temporal_unavailable(error) from error
    except RuntimeError as error:
        raise _temporal_unavailable(error) from error
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise _temporal_unavailable(error) from error
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
        message = error.cause.message if isinstance(error.cause, ApplicationError) else str(error)
        raise HTTPException(status.HTTP_409_CONFLICT, detail=message) from error
    except (TimeoutError, RPCTimeoutOrCancelledError, RPCError) as error:
        # Accepted, and the workflow finishes it: the last verify is still under way.
        row = await run_in_threadpool(queries.get_invoice, engine, invoice_id)
        if row is None:  # accepted while its first record was being written
            raise _temporal_unavailable(error) from error
        response.status_code = status.HTTP_202_ACCEPTED
        return InvoiceOut.from_row(row)
    log.info("invoice.cancel_answered", invoice_id=invoice_id, status=snapshot.status.value)
    return InvoiceOut.from_snapshot(snapshot)
