"""The invoice workflow's timers on the real schedule, on the time-skipping test server: a
24 h due date, a day of polls, the 72 h late-payment window, continue-as-new carrying the
state, and a cancel that meets a last verify still under way.

The real default poll schedule (1 m, 5 m, 15 m, 1 h, 3 h, 6 h, then every 12 h) polls at
0:01, 0:06, 0:21, 1:21, 4:21, 10:21 and 22:21 in the first day: 7 verifies, then the due
date's last one. The late window keeps polling every 12 h (34:21 … 94:21: 6 more) and looks
once more as it closes at 96:00."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from config import ApiKey, Settings
from domain.errors import ErrorType
from domain.invoice import InvoiceStatus
from tests.workflows.support import QUEUE, PaystackAndDatabase, create, workflow_of
from workflows.invoice import InvoiceWorkflow

POLLS_IN_THE_FIRST_DAY = 7
POLLS_IN_THE_LATE_WINDOW = 6


async def test_a_day_of_polls_then_expiry_then_the_late_window(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    invoice = await create(env, due_in=timedelta(hours=24))
    handle = workflow_of(env, invoice)

    await env.sleep(timedelta(hours=23, minutes=59))
    assert books.verifies[invoice.invoice_id] == POLLS_IN_THE_FIRST_DAY
    assert books.records[invoice.invoice_id].status is InvoiceStatus.PENDING

    await env.sleep(timedelta(minutes=2))
    # Expired only after a last verify at the due date.
    assert books.verifies[invoice.invoice_id] == POLLS_IN_THE_FIRST_DAY + 1
    assert books.records[invoice.invoice_id].status is InvoiceStatus.EXPIRED

    await env.sleep(timedelta(hours=71, minutes=58))
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    await env.sleep(timedelta(minutes=3))
    expired = await handle.result()
    assert expired.status is InvoiceStatus.EXPIRED and expired.revision == 2
    assert books.verifies[invoice.invoice_id] == (
        POLLS_IN_THE_FIRST_DAY + 1 + POLLS_IN_THE_LATE_WINDOW + 1
    )


async def test_continue_as_new_carries_the_schedule_and_the_invoice(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    # The test server never suggests continue-as-new: a threshold forces it every few polls.
    settings = Settings(
        temporal_task_queue=QUEUE,
        temporal_paystack_task_queue=QUEUE,
        payrecon_api_keys=[ApiKey.parse("k")],
        payrecon_continue_as_new_after_events=40,
    )
    invoice = await create(env, due_in=timedelta(hours=24), settings=settings)
    handle = workflow_of(env, invoice)
    first_run = (await handle.describe()).run_id

    await env.sleep(timedelta(hours=24 + 72, minutes=1))
    expired = await handle.result()

    first = await env.client.get_workflow_handle(handle.id, run_id=first_run).describe()
    assert first.status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    # Carried: the poll count and the next poll (no schedule restarted at one minute), and
    # the invoice itself (no second creation, one expiry).
    assert books.verifies[invoice.invoice_id] == (
        POLLS_IN_THE_FIRST_DAY + 1 + POLLS_IN_THE_LATE_WINDOW + 1
    )
    assert expired.status is InvoiceStatus.EXPIRED and expired.revision == 2
    assert expired.created_at == invoice.created_at


async def test_a_cancel_waits_for_its_last_verify_and_answers_what_paystack_says(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    invoice = await create(env, due_in=timedelta(hours=24))
    handle = workflow_of(env, invoice)
    books.held = asyncio.Event()  # Paystack is slow to answer the cancel's last verify
    update = await handle.start_update(
        InvoiceWorkflow.cancel, wait_for_stage=WorkflowUpdateStage.ACCEPTED
    )
    books.pay(invoice.invoice_id)  # the customer paid a moment before the cancel
    books.held.set()

    answered = await update.result()

    assert answered.status is InvoiceStatus.PAID  # never cancelled while Paystack says paid
    assert books.records[invoice.invoice_id] == answered


async def test_a_cancel_during_the_due_dates_last_verify_is_refused_as_expired(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    invoice = await create(env, due_in=timedelta(seconds=30))
    handle = workflow_of(env, invoice)
    # Only the due date's verify is held: were the create's task lost and its run resumed
    # from the record, the verify that run asks for at once is answered.
    books.held, books.held_from = asyncio.Event(), invoice.due_at
    await env.sleep(timedelta(seconds=31))  # the due date's last verify is under way
    asked = books.verified_at[invoice.invoice_id]
    assert len([at for at in asked if at >= invoice.due_at]) == 1

    update = await handle.start_update(
        InvoiceWorkflow.cancel, wait_for_stage=WorkflowUpdateStage.ACCEPTED
    )
    books.held.set()

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await update.result()
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == ErrorType.INVOICE_FINAL
    assert books.records[invoice.invoice_id].status is InvoiceStatus.EXPIRED
