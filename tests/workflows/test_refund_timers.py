"""Refunds on the time-skipping test server: with no webhook, a refund is checked with
Paystack on the real backoff (1 m, 5 m, 15 m, 1 h, 3 h, 6 h, then daily) until it is
final; and an invoice paid months ago is woken for a refund and ends refunded."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from domain.invoice import InvoiceSnapshot, InvoiceStatus
from domain.refunds import REFUND_POLL_SCHEDULE, RefundStatus
from tests.workflows.support import AMOUNT, SETTINGS, PaystackAndDatabase, create, workflow_of
from workflows.invoice import InvoiceWorkflow
from workflows.starter import reach_invoice
from workflows.types import PaymentNotice, RefundAnswer, RefundRequest

LOOKS_BEFORE_PROCESSED = 9


async def paid(env: WorkflowEnvironment, books: PaystackAndDatabase) -> InvoiceSnapshot:
    invoice = await create(env, due_in=timedelta(hours=24))
    handle = workflow_of(env, invoice)
    books.pay(invoice.invoice_id)
    await handle.signal(
        InvoiceWorkflow.payment_notified, PaymentNotice(invoice.invoice_id, transaction_id=302961)
    )
    done = await handle.result()
    assert done.status is InvoiceStatus.PAID
    return done


def refund_request(refund_id: str, amount: int | None = None) -> RefundRequest:
    return RefundRequest(
        refund_id=refund_id, initiated_by="api:default", fingerprint="body", amount=amount
    )


async def test_a_refund_with_no_webhook_is_checked_on_the_backoff_until_final(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    invoice = await paid(env, books)
    books.refund_moves = [(LOOKS_BEFORE_PROCESSED, "processed")]
    answer: RefundAnswer = await reach_invoice(
        env.client,
        SETTINGS,
        invoice,
        InvoiceWorkflow.refund,
        refund_request("rf_000000000000000000000001"),
    )
    assert answer.created and answer.refund.status is RefundStatus.PENDING
    assert answer.refund.amount == AMOUNT

    # The schedule's nine looks take under four days (the client's wait for a result does
    # not skip time over a woken run's timers: the test sleeps through them).
    await env.sleep(timedelta(days=4))
    refunded = await workflow_of(env, invoice).result()
    assert refunded.status is InvoiceStatus.REFUNDED and refunded.amount_refunded == AMOUNT
    # Each look after the one before by the schedule's next interval, the last repeating.
    gaps = [
        round((later - earlier).total_seconds())
        for earlier, later in zip(books.refund_looks, books.refund_looks[1:], strict=False)
    ]
    expected = list(REFUND_POLL_SCHEDULE[1:]) + [REFUND_POLL_SCHEDULE[-1]] * 2
    assert gaps == [round(s) for s in expected[: LOOKS_BEFORE_PROCESSED - 1]]
    assert len(books.refund_looks) == LOOKS_BEFORE_PROCESSED


async def test_an_invoice_paid_months_ago_is_woken_for_a_refund(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    invoice = await paid(env, books)
    await env.sleep(timedelta(days=120))
    books.refund_moves = [(1, "processed")]
    answer: RefundAnswer = await reach_invoice(
        env.client,
        SETTINGS,
        books.records[invoice.invoice_id],
        InvoiceWorkflow.refund,
        refund_request("rf_000000000000000000000002", amount=100_000),
    )
    assert answer.created and answer.refund.status is RefundStatus.PENDING
    assert answer.refund.created_at - invoice.updated_at >= timedelta(days=120)

    handle = workflow_of(env, invoice)
    await env.sleep(timedelta(minutes=2))
    partly = await handle.result()
    assert partly.status is InvoiceStatus.PARTIALLY_REFUNDED
    assert partly.amount_refunded == 100_000
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    # The record holds the refund as the workflow ended with it.
    [recorded] = books.records[invoice.invoice_id].refunds
    assert recorded.status is RefundStatus.PROCESSED and recorded.paystack_refund_id == 1000
