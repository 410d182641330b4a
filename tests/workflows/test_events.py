"""What an invoice's changes tell, on the time-skipping server: each change's event goes to
the outbox with the record that makes it (one id per revision, fixed at the change), and
every notice is acted on."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from domain.events import EmailKind, EventType
from domain.invoice import InvoiceStatus
from domain.refunds import refund_id_for_key
from domain.verification import Verification
from tests.workflows.support import (
    AMOUNT,
    LOSE_PAID_TASK,
    SETTINGS,
    PaystackAndDatabase,
    create,
    workflow_of,
)
from workflows.invoice import InvoiceWorkflow
from workflows.starter import reach_invoice
from workflows.types import (
    DisputeNotice,
    PaymentNotice,
    RefundNotice,
    RefundRequest,
    workflow_id_for,
)


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

    events = [event for event in books.events if event.invoice.invoice_id == invoice.invoice_id]
    assert [event.type for event in events] == [EventType.INVOICE_CREATED, EventType.INVOICE_PAID]
    assert [event.event_id for event in events] == [
        f"evt_{invoice.invoice_id}_1",
        f"evt_{invoice.invoice_id}_2",
    ]
    assert events[1].invoice == paid == books.records[invoice.invoice_id]
    assert [event.emails for event in events] == [[], [EmailKind.RECEIPT]]


async def test_an_expired_invoice_tells_created_then_expired_and_emails_nothing(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    invoice = await create(env, due_in=timedelta(hours=1))
    await env.sleep(timedelta(hours=1 + 72, minutes=1))
    await workflow_of(env, invoice).result()
    assert books.event_types(invoice.invoice_id) == ["invoice.created", "invoice.expired"]
    events = [event for event in books.events if event.invoice.invoice_id == invoice.invoice_id]
    assert all(event.emails == [] for event in events)


async def test_a_decision_lost_with_its_task_is_never_recorded_or_told(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    """Paystack says paid; the task that decided so is lost before it completes; the retry
    asks again and Paystack now says abandoned. The record and the outbox follow only the
    decision the history keeps: the invoice is still pending, and no `invoice.paid` exists."""
    invoice = await create(env, due_in=timedelta(hours=24))
    reference = invoice.paystack_reference or invoice.invoice_id
    books.next_answers[reference] = [
        Verification(
            reference=reference,
            found=True,
            status="success",
            amount=AMOUNT,
            currency="NGN",
            transaction_id=302961,
        )
    ]
    LOSE_PAID_TASK.add(workflow_id_for(invoice.invoice_id))
    handle = workflow_of(env, invoice)
    await handle.signal(
        InvoiceWorkflow.payment_notified, PaymentNotice(invoice.invoice_id, transaction_id=302961)
    )
    await env.sleep(timedelta(seconds=30))

    assert workflow_id_for(invoice.invoice_id) not in LOSE_PAID_TASK, "the task was lost"
    assert books.verifies[reference] >= 2
    assert books.event_types(invoice.invoice_id) == ["invoice.created"]
    assert books.records[invoice.invoice_id].status is InvoiceStatus.PENDING
    state = await handle.query(InvoiceWorkflow.state)
    assert state is not None and state.status is InvoiceStatus.PENDING


async def test_two_changes_at_once_are_two_events_with_two_ids(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    """Two refund requests interleave across the record's await: each change takes its own
    revision as it is made, so each has its own event, and both are recorded."""
    invoice = await create(env, due_in=timedelta(hours=24))
    books.pay(invoice.invoice_id)
    handle = workflow_of(env, invoice)
    await handle.signal(
        InvoiceWorkflow.payment_notified, PaymentNotice(invoice.invoice_id, transaction_id=302961)
    )
    await handle.result()

    def request(n: int) -> RefundRequest:
        return RefundRequest(
            refund_id=refund_id_for_key("k", invoice.invoice_id, f"key-{n}"),
            initiated_by="api:k",
            fingerprint=f"body-{n}",
            amount=50_000,
        )

    answers = await asyncio.gather(
        *(
            reach_invoice(
                env.client,
                SETTINGS,
                books.records[invoice.invoice_id],
                InvoiceWorkflow.refund,
                request(n),
            )
            for n in (1, 2)
        )
    )
    assert {answer.refund.refund_id for answer in answers} == {
        request(1).refund_id,
        request(2).refund_id,
    }
    refund_events = [
        event
        for event in books.events
        if event.invoice.invoice_id == invoice.invoice_id and event.type is EventType.REFUND_UPDATED
    ]
    ids = [event.event_id for event in refund_events]
    assert len(ids) == len(set(ids)) >= 2
    # Each id names the revision its change made, and the invoice it carries is at it.
    for event in refund_events:
        assert event.event_id == f"evt_{invoice.invoice_id}_{event.invoice.revision}"
        assert event.refund is not None and event.refund.revision == event.invoice.revision
    asked = {event.refund.refund_id for event in refund_events if event.refund is not None}
    assert asked == {request(1).refund_id, request(2).refund_id}


async def test_fifty_distinct_refund_and_dispute_notices_are_each_acted_on(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    invoice = await create(env, due_in=timedelta(hours=24))
    handle = workflow_of(env, invoice)
    for n in range(50):
        await handle.signal(
            InvoiceWorkflow.dispute_notified,
            DisputeNotice(event="charge.dispute.create", dispute_id=9000 + n),
        )
        await handle.signal(
            InvoiceWorkflow.refund_notified,
            RefundNotice(event="refund.pending", status="pending", refund_reference=f"r{n}"),
        )
    # Notices before the payment is known wait for it; then each is acted on.
    books.pay(invoice.invoice_id)
    await handle.signal(
        InvoiceWorkflow.payment_notified, PaymentNotice(invoice.invoice_id, transaction_id=302961)
    )
    done = await handle.result()

    assert sorted(set(books.disputes_fetched)) == [9000 + n for n in range(50)]
    assert sorted(d.dispute_id for d in done.disputes) == [9000 + n for n in range(50)]
    # One look at the refunds answers every refund notice before it.
    assert len(books.refund_looks) == 1
    assert done.status is InvoiceStatus.PAID
    dispute_events = [e for e in books.events if e.type is EventType.DISPUTE_UPDATED]
    assert (
        len({e.event_id for e in dispute_events if e.invoice.invoice_id == done.invoice_id}) == 50
    )


async def test_verify_now_asks_paystack_at_most_once_in_two_seconds(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    invoice = await create(env, due_in=timedelta(hours=24))
    handle = workflow_of(env, invoice)
    first = await handle.execute_update(InvoiceWorkflow.verify_now)
    again = await handle.execute_update(InvoiceWorkflow.verify_now)
    assert books.verifies[invoice.invoice_id] == 1
    assert first.paystack_status == again.paystack_status == "abandoned"
    assert again.verified_at == first.verified_at

    await env.sleep(timedelta(seconds=3))
    books.pay(invoice.invoice_id)
    paid = await handle.execute_update(InvoiceWorkflow.verify_now)
    assert books.verifies[invoice.invoice_id] == 2
    assert paid.invoice.status is InvoiceStatus.PAID and paid.paystack_status == "success"


async def test_verify_now_reaches_a_completed_invoice_through_a_new_run(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    invoice = await create(env, due_in=timedelta(hours=1))
    await env.sleep(timedelta(hours=1 + 72, minutes=1))
    expired = await workflow_of(env, invoice).result()
    assert expired.status is InvoiceStatus.EXPIRED
    checked = await reach_invoice(
        env.client, SETTINGS, books.records[invoice.invoice_id], InvoiceWorkflow.verify_now
    )
    assert (
        checked.invoice.status is InvoiceStatus.EXPIRED and checked.paystack_status == "abandoned"
    )
