"""How the API and the CLI reach an invoice's workflow (client side: workflow code never
imports this).

An invoice has one workflow id for its whole life, `invoice-<id>`, and at most one open run
of it at any moment: the invoice's single writer. A run completes once the invoice has
nothing left to wait for (paid; or expired and past its late-payment window). A request
that needs the writer later (an operator's reverify, verify-now, heals from
reconciliation, refunds; disputes next) is an update-with-start on that id (a refund
webhook, a signal-with-start):

- a run is open: the update goes to it (the conflict policy keeps the one writer);
- the last run completed: a new run starts, resumes from the invoice's record (written by
  every run before it completes, so it holds the newest revision), handles the update,
  and completes again.

A create uses the same id but never starts over a completed invoice (its reuse policy
allows a new run only after a failed one), so a repeated Idempotency-Key answers the
existing invoice and never opens a second Paystack transaction.
"""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from config import Settings
from domain.invoice import InvoiceRequest, InvoiceSnapshot, InvoiceStatus
from workflows.invoice import InvoiceWorkflow
from workflows.types import (
    InvoiceWorkflowInput,
    initial_search_attributes,
    workflow_id_for,
)


def invoice_start(
    settings: Settings,
    request: InvoiceRequest,
    *,
    request_id: str,
    status: InvoiceStatus = InvoiceStatus.PENDING,
    resume_only: bool = False,
) -> WithStartWorkflowOperation[InvoiceWorkflow, InvoiceSnapshot]:
    """The start half of an update-with-start on the invoice's workflow."""
    workflow_input, options = _start(
        settings, request, request_id=request_id, status=status, resume_only=resume_only
    )
    return WithStartWorkflowOperation(InvoiceWorkflow.run, workflow_input, **options)


def _start(
    settings: Settings,
    request: InvoiceRequest,
    *,
    request_id: str,
    status: InvoiceStatus,
    resume_only: bool,
) -> tuple[InvoiceWorkflowInput, dict[str, Any]]:
    """The invoice workflow's input and start options, for any way of starting it."""
    workflow_input = InvoiceWorkflowInput(
        request=request,
        poll_schedule=settings.payrecon_poll_schedule,
        late_payment_window=settings.payrecon_late_payment_window,
        request_id=request_id,
        paystack_task_queue=settings.temporal_paystack_task_queue,
        resume_only=resume_only,
        continue_as_new_after_events=settings.payrecon_continue_as_new_after_events,
        refund_poll_schedule=settings.payrecon_refund_poll_schedule,
        refund_answer_within=settings.payrecon_refund_answer_seconds,
    )
    options: dict[str, Any] = {
        "id": workflow_id_for(request.invoice_id),
        "task_queue": settings.temporal_task_queue,
        "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
        # Waking may follow a completed run; creating only a failed one.
        "id_reuse_policy": (
            WorkflowIDReusePolicy.ALLOW_DUPLICATE
            if resume_only
            else WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
        ),
        "search_attributes": initial_search_attributes(
            request, status, customer_email=settings.customer_email_search_attribute
        ),
        "static_summary": (
            f"{request.currency} {request.amount / 100:.2f} from {request.customer_email}"
        ),
    }
    return workflow_input, options


def _wake(
    settings: Settings, invoice: InvoiceSnapshot
) -> tuple[InvoiceWorkflowInput, dict[str, Any]]:
    """A run that resumes the recorded invoice (never creates one)."""
    return _start(
        settings,
        invoice.request(),
        request_id=uuid.uuid4().hex,
        status=invoice.status,
        resume_only=True,
    )


async def reach_invoice(
    client: Client,
    settings: Settings,
    invoice: InvoiceSnapshot,
    update: Any,
    *args: Any,
    **options: Any,
) -> Any:
    """Runs `update` (an InvoiceWorkflow update, with its argument if it takes one) on the
    invoice's single writer: its open run, or a new run resumed from its record."""
    workflow_input, start_options = _wake(settings, invoice)
    start = WithStartWorkflowOperation(InvoiceWorkflow.run, workflow_input, **start_options)
    return await client.execute_update_with_start_workflow(
        update, *args, start_workflow_operation=start, **options
    )


async def signal_invoice(
    client: Client, settings: Settings, invoice: InvoiceSnapshot, signal: Any, message: Any
) -> None:
    """Sends `signal` to the invoice's single writer, waking a completed invoice for it (a
    refund webhook long after the payment): signal-with-start on its workflow id."""
    workflow_input, options = _wake(settings, invoice)
    await client.start_workflow(
        InvoiceWorkflow.run,
        workflow_input,
        # Signal-with-start takes the signal's name (a method's own, as none is renamed).
        start_signal=signal.__name__,
        start_signal_args=[message],
        **options,
    )
