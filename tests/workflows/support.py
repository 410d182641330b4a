"""What the workflow tests share: Paystack and the database (with its outbox) as test
activities under the real activities' names, the real default settings, and a create as
the API makes it."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta

from temporalio import activity, workflow
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import (
    Interceptor,
    StartActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from activities.paystack import CreateRefundInput, Opened, OpenInput, RetryRefundInput
from config import ApiKey, Settings
from domain.events import InvoiceEvent, RecordedChange
from domain.invoice import InvoiceRequest, InvoiceSnapshot, InvoiceStatus
from domain.refunds import merchant_note_for, refund_id_in
from domain.verification import Verification
from paystack.client import PaymentLink
from paystack.disputes import DisputeRecord
from paystack.refunds import RefundRecord
from workflows.invoice import InvoiceWorkflow
from workflows.starter import invoice_start
from workflows.types import OpenInvoice, workflow_id_for

QUEUE = "lifetime"
AMOUNT = 250_000


class PaystackAndDatabase:
    """Paystack's answers as the test sets them, and the invoice records as the projection
    keeps them (a revision never goes backwards)."""

    def __init__(self) -> None:
        self.records: dict[str, InvoiceSnapshot] = {}
        self.charges: dict[str, Verification] = {}
        self.verifies: Counter[str] = Counter()
        self.held: asyncio.Event | None = None
        # With `held`: only verifies asked for from this moment are held (None: every one).
        self.held_from: datetime | None = None
        # When each verify was asked for, by reference.
        self.verified_at: defaultdict[str, list[datetime]] = defaultdict(list)
        # Every event put in the outbox, once each, in the order recorded.
        self.events: list[InvoiceEvent] = []
        # Paystack's refunds, and when each look at them was scheduled.
        self.refunds: list[RefundRecord] = []
        self.refund_looks: list[datetime] = []
        # Moves a refund on when it is looked at: (look number, status), in order.
        self.refund_moves: list[tuple[int, str]] = []
        self.disputes_fetched: list[int] = []
        # Answers a verify gives before the charges above, by reference, first first.
        self.next_answers: defaultdict[str, list[Verification]] = defaultdict(list)

    def pay(self, reference: str, amount: int = AMOUNT) -> None:
        self.charges[reference] = Verification(
            reference=reference,
            found=True,
            status="success",
            amount=amount,
            currency="NGN",
            transaction_id=302961,
        )

    @activity.defn(name="record_invoice")
    async def record_invoice(self, change: RecordedChange) -> bool:
        stored = {event.event_id for event in self.events}
        self.events += [event for event in change.events if event.event_id not in stored]
        snapshot = change.invoice
        recorded = self.records.get(snapshot.invoice_id)
        if recorded is not None and recorded.revision >= snapshot.revision:
            return False
        self.records[snapshot.invoice_id] = snapshot
        return True

    @activity.defn(name="open_transaction")
    async def open_transaction(self, request: OpenInput) -> Opened:
        recorded = self.records.get(request.invoice_id) if request.find_record else None
        if recorded is not None:
            return Opened(recorded=recorded)
        if request.payment is None:
            return Opened()
        reference = request.payment.reference
        return Opened(
            link=PaymentLink(
                reference=reference,
                authorization_url=f"https://checkout.example/{reference}",
                access_code=reference,
            )
        )

    @activity.defn(name="verify_transaction")
    async def verify_transaction(self, reference: str) -> Verification:
        self.verifies[reference] += 1
        asked_at = activity.info().current_attempt_scheduled_time
        self.verified_at[reference].append(asked_at)
        # Paystack is slow until the test lets it answer.
        if self.held is not None and (self.held_from is None or asked_at >= self.held_from):
            await self.held.wait()
        if self.next_answers[reference]:
            return self.next_answers[reference].pop(0)
        return self.charges.get(
            reference, Verification(reference=reference, found=True, status="abandoned")
        )

    @activity.defn(name="create_refund")
    async def create_refund(self, request: CreateRefundInput) -> RefundRecord:
        for record in self.refunds:
            if refund_id_in(record.merchant_note) == request.refund_id:
                return record
        record = RefundRecord(
            id=1000 + len(self.refunds),
            transaction_id=request.transaction_id,
            transaction_reference=None,
            amount=request.amount,
            currency="NGN",
            status="pending",
            merchant_note=merchant_note_for(request.refund_id),
            customer_note=request.customer_note,
            dispute_id=None,
            created_at=None,
            updated_at=None,
            refunded_at=None,
        )
        self.refunds.append(record)
        return record

    @activity.defn(name="refunds_of_transaction")
    async def refunds_of_transaction(self, transaction_id: int) -> list[RefundRecord]:
        self.refund_looks.append(activity.info().current_attempt_scheduled_time)
        while self.refund_moves and self.refund_moves[0][0] <= len(self.refund_looks):
            _, status = self.refund_moves.pop(0)
            self.refunds = [dataclasses.replace(r, status=status) for r in self.refunds]
        return [r for r in self.refunds if r.transaction_id == transaction_id]

    @activity.defn(name="retry_refund")
    async def retry_refund(self, request: RetryRefundInput) -> RefundRecord:
        [record] = [r for r in self.refunds if r.id == request.paystack_refund_id]
        moved = dataclasses.replace(record, status="processing")
        self.refunds = [moved if r.id == record.id else r for r in self.refunds]
        return moved

    @activity.defn(name="fetch_dispute")
    async def fetch_dispute(self, dispute_id: int) -> DisputeRecord:
        """Every dispute is open, awaiting the merchant, with no due date."""
        self.disputes_fetched.append(dispute_id)
        return DisputeRecord(
            id=dispute_id,
            transaction_id=302961,
            transaction_reference=None,
            status="awaiting-merchant-feedback",
            category="chargeback",
            reason=None,
            resolution=None,
            refund_amount=None,
            currency="NGN",
            due_at=None,
            resolved_at=None,
            updated_at=None,
        )

    def event_types(self, invoice_id: str) -> list[str]:
        return [e.type.value for e in self.events if e.invoice.invoice_id == invoice_id]


# Workflows whose task that records `paid` is lost, once: the worker dies before it
# completes. Outside the workflow sandbox: the interceptor's class keeps this module's.
LOSE_PAID_TASK: set[str] = set()


class LosePaidTask(Interceptor):
    """Fails the workflow task that schedules the record of a `paid` change, once for each
    workflow in LOSE_PAID_TASK, as a worker killed before the task completes would."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _LosePaidTaskInbound


class _LosePaidTaskInbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_LosePaidTaskOutbound(outbound))


class _LosePaidTaskOutbound(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[object]:
        workflow_id = workflow.info().workflow_id
        if input.activity == "record_invoice" and workflow_id in LOSE_PAID_TASK:
            change = input.args[0]
            if any(event.type.value == "invoice.paid" for event in change.events):
                LOSE_PAID_TASK.discard(workflow_id)
                raise RuntimeError("the worker died before the task completed")
        return super().start_activity(input)


# The real defaults: polls from a minute to twelve hours, a 72 h late-payment window.
SETTINGS = Settings(
    temporal_task_queue=QUEUE,
    temporal_paystack_task_queue=QUEUE,
    payrecon_api_keys=[ApiKey.parse("k")],
)


async def create(
    env: WorkflowEnvironment, due_in: timedelta, settings: Settings = SETTINGS
) -> InvoiceSnapshot:
    invoice_id = f"inv-{uuid.uuid4().hex[:24]}"
    request = InvoiceRequest(
        invoice_id=invoice_id,
        customer_email="ada@example.com",
        amount=AMOUNT,
        currency="NGN",
        due_at=await env.get_current_time() + due_in,
        fingerprint="body",
    )
    opened = await env.client.execute_update_with_start_workflow(
        InvoiceWorkflow.open_invoice,
        OpenInvoice(fingerprint="body", request_id="first"),
        start_workflow_operation=invoice_start(settings, request, request_id="first"),
    )
    assert opened.created and opened.invoice.status is InvoiceStatus.PENDING
    return opened.invoice


def workflow_of(
    env: WorkflowEnvironment, invoice: InvoiceSnapshot
) -> WorkflowHandle[InvoiceWorkflow, InvoiceSnapshot]:
    """The invoice's workflow, whichever run is the latest."""
    return env.client.get_workflow_handle_for(
        InvoiceWorkflow.run, workflow_id_for(invoice.invoice_id)
    )
