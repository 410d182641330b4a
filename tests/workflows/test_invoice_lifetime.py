"""An invoice reachable for its whole life, on the time-skipping test server: its workflow
completes once nothing is left to wait for, and a request months later reaches its single
writer again through update-with-start (workflows/starter.py).

Day-long timers need skipped time, so Paystack and the database are test activities here,
with the real activities' names; the end-to-end tests run the real ones."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.errors import ErrorType
from domain.invoice import InvoiceSnapshot, InvoiceStatus, ReviewReason
from tests.helpers import keep_history
from tests.workflows.support import AMOUNT, SETTINGS, PaystackAndDatabase, create, workflow_of
from workflows.invoice import InvoiceWorkflow
from workflows.starter import invoice_start, reach_invoice
from workflows.types import OpenInvoice, PaymentNotice


async def test_a_paid_invoice_is_woken_after_180_days(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    invoice = await create(env, due_in=timedelta(hours=24))
    handle = workflow_of(env, invoice)
    books.pay(invoice.invoice_id)
    await handle.signal(
        InvoiceWorkflow.payment_notified, PaymentNotice(invoice.invoice_id, transaction_id=302961)
    )
    paid = await handle.result()
    assert paid.status is InvoiceStatus.PAID and paid.revision == 2
    first_run = (await handle.describe()).run_id

    await env.sleep(timedelta(days=180))
    verifies = books.verifies[invoice.invoice_id]
    woken: InvoiceSnapshot = await reach_invoice(
        env.client, SETTINGS, books.records[invoice.invoice_id], InvoiceWorkflow.reverify
    )

    # Paystack was asked again, nothing moved, and the new run has completed.
    assert books.verifies[invoice.invoice_id] == verifies + 1
    assert woken.status is InvoiceStatus.PAID and woken.revision == paid.revision
    assert woken.paid_at == paid.paid_at
    assert (await handle.result()) == woken
    latest = await handle.describe()
    assert latest.run_id != first_run and latest.status == WorkflowExecutionStatus.COMPLETED
    first = await env.client.get_workflow_handle(handle.id, run_id=first_run).describe()
    assert first.status == WorkflowExecutionStatus.COMPLETED
    assert books.records[invoice.invoice_id] == paid


async def test_a_payment_after_the_late_window_is_found_when_woken(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    invoice = await create(env, due_in=timedelta(hours=24))
    handle = workflow_of(env, invoice)
    # Due in 24 h, then 72 h watching for a late payment: the workflow completes expired.
    await env.sleep(timedelta(hours=24 + 72, minutes=1))
    expired = await handle.result()
    assert expired.status is InvoiceStatus.EXPIRED

    books.pay(invoice.invoice_id)
    await env.sleep(timedelta(days=180))
    woken: InvoiceSnapshot = await reach_invoice(
        env.client, SETTINGS, books.records[invoice.invoice_id], InvoiceWorkflow.reverify
    )

    assert woken.status is InvoiceStatus.NEEDS_REVIEW
    assert woken.review_reason is ReviewReason.PAID_AFTER_EXPIRY
    assert woken.revision == expired.revision + 1 and woken.amount_paid == AMOUNT
    assert books.records[invoice.invoice_id] == woken


async def test_a_run_that_finds_its_own_record_still_takes_the_windows_last_look(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    """A run whose first task was lost after recording starts again from its own record.
    Unlike a run woken on a completed invoice, it takes the late window's last look however
    late it runs: a payment made in the window is found."""
    invoice = await create(env, due_in=timedelta(hours=1))
    await env.sleep(timedelta(hours=1, minutes=1))  # expired; the 72 h window is open
    expired = books.records[invoice.invoice_id]
    assert expired.status is InvoiceStatus.EXPIRED
    books.pay(invoice.invoice_id)  # in the window
    await workflow_of(env, invoice).terminate("the run's task is lost")
    await env.sleep(timedelta(hours=73))  # the window closes meanwhile

    # Started as the create starts it (not woken): it finds its record, expired.
    reopened = await env.client.execute_update_with_start_workflow(
        InvoiceWorkflow.open_invoice,
        OpenInvoice(fingerprint="body", request_id="first"),
        start_workflow_operation=invoice_start(SETTINGS, expired.request(), request_id="first"),
    )
    assert reopened.invoice.status is InvoiceStatus.EXPIRED
    handle = workflow_of(env, invoice)
    found = await handle.result()

    assert found.status is InvoiceStatus.NEEDS_REVIEW
    assert found.review_reason is ReviewReason.PAID_AFTER_EXPIRY
    assert found.revision == expired.revision + 1 and found.amount_paid == AMOUNT
    assert books.records[invoice.invoice_id] == found
    await keep_history(await handle.fetch_history(), "late_payment_found_by_own_record")


async def test_two_requests_at_once_share_one_writer(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    invoice = await create(env, due_in=timedelta(hours=1))
    await env.sleep(timedelta(hours=1 + 72, minutes=1))
    handle = workflow_of(env, invoice)
    expired = await handle.result()
    books.pay(invoice.invoice_id)

    recorded = books.records[invoice.invoice_id]
    first, second = await asyncio.gather(
        reach_invoice(env.client, SETTINGS, recorded, InvoiceWorkflow.reverify),
        reach_invoice(env.client, SETTINGS, recorded, InvoiceWorkflow.reverify),
    )

    # One transition, whichever run each request met.
    assert first.status is second.status is InvoiceStatus.NEEDS_REVIEW
    assert books.records[invoice.invoice_id].revision == expired.revision + 1


async def test_waking_an_unknown_invoice_creates_nothing(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    ghost = InvoiceSnapshot(
        invoice_id=f"inv-{uuid.uuid4().hex[:24]}",
        workflow_id="",
        status=InvoiceStatus.PAID,
        customer_email="ghost@example.com",
        amount=AMOUNT,
        currency="NGN",
        due_at=await env.get_current_time(),
        created_at=await env.get_current_time(),
        updated_at=await env.get_current_time(),
        revision=2,
        fingerprint="body",
    )
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await reach_invoice(env.client, SETTINGS, ghost, InvoiceWorkflow.reverify)
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == ErrorType.INVOICE_NOT_FOUND
    assert ghost.invoice_id not in books.records and not books.verifies[ghost.invoice_id]
