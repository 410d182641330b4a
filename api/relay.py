"""Handing a recorded Paystack event to its invoice's workflow. Used by the webhook route
and by the operator CLI's re-delivery."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum

import structlog
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.schemas import PAYSTACK_REFERENCE_PATTERN
from db import queries
from domain.invoice import invoice_id_from_reference
from paystack.events import CHARGE_SUCCESS, WebhookEvent
from workflows.invoice import InvoiceWorkflow
from workflows.types import PaymentNotice, workflow_id_for

log = structlog.get_logger(__name__)

SIGNAL_TIMEOUT = timedelta(seconds=10)
_our_reference = re.compile(PAYSTACK_REFERENCE_PATTERN)


class RelayOutcome(StrEnum):
    SIGNALLED = "signalled"
    WORKFLOW_CLOSED = "workflow_closed"
    UNKNOWN_REFERENCE = "unknown_reference"
    IGNORED = "ignored"
    # Not handed over: Paystack must try again.
    TEMPORAL_UNAVAILABLE = "temporal_unavailable"


async def relay(temporal: Client, engine: Engine, event: WebhookEvent) -> RelayOutcome:
    if event.event != CHARGE_SUCCESS:
        return RelayOutcome.IGNORED
    reference = event.reference
    if reference is None or not _our_reference.match(reference):
        return RelayOutcome.UNKNOWN_REFERENCE
    invoice_id = invoice_id_from_reference(reference)
    notice = PaymentNotice(
        reference=reference,
        transaction_id=event.transaction_id,
        amount=event.amount,
        currency=event.currency,
        paid_at=event.paid_at,
    )
    handle = temporal.get_workflow_handle(workflow_id_for(invoice_id))
    try:
        await handle.signal(InvoiceWorkflow.payment_notified, notice, rpc_timeout=SIGNAL_TIMEOUT)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            log.warning("webhook.signal_failed", invoice_id=invoice_id, error=str(error))
            return RelayOutcome.TEMPORAL_UNAVAILABLE
        known = await run_in_threadpool(queries.get_invoice, engine, invoice_id)
        return RelayOutcome.WORKFLOW_CLOSED if known else RelayOutcome.UNKNOWN_REFERENCE
    except Exception as error:  # the lazy client fails this way when Temporal is down
        log.warning("webhook.signal_failed", invoice_id=invoice_id, error=str(error))
        return RelayOutcome.TEMPORAL_UNAVAILABLE
    return RelayOutcome.SIGNALLED
