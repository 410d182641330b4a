"""The events an invoice's transitions tell, and how they are delivered, on the
time-skipping server: days of retries in a moment."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta

from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.events import DeliveryOutcome
from domain.events import EmailKind, EventType
from domain.invoice import InvoiceStatus
from tests.workflows.support import SETTINGS, PaystackAndDatabase, create, workflow_of
from workflows.events import EventReport, EventWorkflow, event_workflow_id
from workflows.invoice import InvoiceWorkflow
from workflows.starter import reach_invoice
from workflows.types import PaymentNotice

SCHEDULE = SETTINGS.payrecon_event_retry_schedule
RETRY_FOR = timedelta(seconds=SETTINGS.payrecon_event_retry_for_seconds)


async def told(env: WorkflowEnvironment, event_id: str) -> EventReport:
    """The event's report, once its workflow is done; it is started by an activity the
    invoice's workflow schedules as it answers, so it may not be there yet."""
    handle = env.client.get_workflow_handle_for(EventWorkflow.run, event_workflow_id(event_id))
    async with asyncio.timeout(10):
        while True:
            try:
                return await handle.result()
            except RPCError as error:
                if error.status is not RPCStatusCode.NOT_FOUND:
                    raise
            await asyncio.sleep(0.05)


async def test_each_transition_is_told_once_with_its_revision_and_paid_sends_a_receipt(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    invoice = await create(env, due_in=timedelta(hours=24))
    handle = workflow_of(env, invoice)
    books.pay(invoice.invoice_id)
    await handle.signal(
        InvoiceWorkflow.payment_notified, PaymentNotice(invoice.invoice_id, transaction_id=302961)
    )
    paid = await handle.result()
    for revision in (1, 2):
        report = await told(env, f"evt_{invoice.invoice_id}_{revision}")
        assert report.delivered == ["we_test"] and report.not_delivered == []

    events = [event for event in books.events if event.invoice.invoice_id == invoice.invoice_id]
    assert [event.type for event in events] == [EventType.INVOICE_CREATED, EventType.INVOICE_PAID]
    assert [event.invoice.revision for event in events] == [1, 2]
    assert events[1].invoice == paid
    receipts = [email for email in books.emails if email.invoice.invoice_id == invoice.invoice_id]
    assert [(email.kind, email.invoice.status) for email in receipts] == [
        (EmailKind.RECEIPT, InvoiceStatus.PAID)
    ]


async def test_an_expired_invoice_tells_created_then_expired_and_emails_nothing(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    invoice = await create(env, due_in=timedelta(hours=1))
    await env.sleep(timedelta(hours=1, minutes=1))
    await told(env, f"evt_{invoice.invoice_id}_2")
    assert books.event_types(invoice.invoice_id) == ["invoice.created", "invoice.expired"]
    assert not [email for email in books.emails if email.invoice.invoice_id == invoice.invoice_id]


async def test_a_failing_endpoint_is_retried_on_the_schedule_for_three_days_then_given_up(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    books.merchant_answers = [DeliveryOutcome.FAILED] * 100
    invoice = await create(env, due_in=timedelta(days=30))
    # In steps: a few attempts each, so no one call to the test server runs long.
    for _ in range(7):
        await env.sleep(timedelta(hours=11))
    report = await told(env, f"evt_{invoice.invoice_id}_1")
    assert report.not_delivered == ["we_test"]

    # Each attempt is made when the one before planned it: its `next_attempt_at`.
    attempts = [attempt for attempt, _ in books.attempts]
    times = [invoice.created_at] + [a.next_attempt_at for a in attempts if a.next_attempt_at]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # 5 s, 5 m, 30 m, 2 h, 5 h, then 10 h: each within its ±20 % jitter.
    planned = [*SCHEDULE, *[SCHEDULE[-1]] * len(gaps)]
    for gap, seconds in zip(gaps, planned, strict=False):
        assert seconds * 0.8 - 1 <= gap.total_seconds() <= seconds * 1.2 + 1
    assert len(attempts) == len(times) and len(attempts) >= 10
    # The last was made before the three days were up, and the next would have been after.
    assert attempts[-1].next_attempt_at is None
    assert times[-1] - invoice.created_at < RETRY_FOR
    assert times[-1] - invoice.created_at + timedelta(seconds=SCHEDULE[-1] * 1.2) >= RETRY_FOR


async def test_an_endpoint_that_answers_gone_is_not_tried_again(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    books.merchant_answers = [DeliveryOutcome.FAILED, DeliveryOutcome.ENDPOINT_DISABLED]
    invoice = await create(env, due_in=timedelta(days=1))
    report = await told(env, f"evt_{invoice.invoice_id}_1")
    assert report.not_delivered == ["we_test"]
    assert [attempt.attempt for attempt, _ in books.attempts] == [1, 2]


async def test_check_now_asks_paystack_at_most_once_in_two_seconds(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    invoice = await create(env, due_in=timedelta(hours=24))
    handle = workflow_of(env, invoice)
    first = await handle.execute_update(InvoiceWorkflow.check_now)
    again = await handle.execute_update(InvoiceWorkflow.check_now)
    assert books.verifies[invoice.invoice_id] == 1
    assert first.paystack_status == again.paystack_status == "abandoned"
    assert again.verified_at == first.verified_at

    await env.sleep(timedelta(seconds=3))
    books.pay(invoice.invoice_id)
    paid = await handle.execute_update(InvoiceWorkflow.check_now)
    assert books.verifies[invoice.invoice_id] == 2
    assert paid.invoice.status is InvoiceStatus.PAID and paid.paystack_status == "success"


async def test_check_now_reaches_a_completed_invoice_through_a_new_run(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    invoice = await create(env, due_in=timedelta(hours=1))
    await env.sleep(timedelta(hours=1 + 72, minutes=1))
    expired = await workflow_of(env, invoice).result()
    assert expired.status is InvoiceStatus.EXPIRED
    checked = await reach_invoice(
        env.client, SETTINGS, books.records[invoice.invoice_id], InvoiceWorkflow.check_now
    )
    assert (
        checked.invoice.status is InvoiceStatus.EXPIRED and checked.paystack_status == "abandoned"
    )
