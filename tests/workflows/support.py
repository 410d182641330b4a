"""What the workflow tests share: Paystack and the database as test activities under the
real activities' names, the real default settings, and a create as the API makes it."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.email import CustomerEmailInput
from activities.events import DeliveryAttempt, DeliveryOutcome
from activities.paystack import CreateRefundInput, InitializeInput, RetryRefundInput
from config import ApiKey, Settings
from domain.events import InvoiceEvent
from domain.invoice import InvoiceRequest, InvoiceSnapshot, InvoiceStatus
from domain.reconcile import Verification
from domain.refunds import merchant_note_for, refund_id_in
from paystack.client import PaymentLink
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
        # What the event workflows were given, and what the merchant's endpoint answers.
        self.events: list[InvoiceEvent] = []
        self.endpoints = ["we_test"]
        self.merchant_answers: list[DeliveryOutcome] = []
        self.attempts: list[tuple[DeliveryAttempt, datetime]] = []
        self.emails: list[CustomerEmailInput] = []
        # Paystack's refunds, and when each look at them was scheduled.
        self.refunds: list[RefundRecord] = []
        self.refund_looks: list[datetime] = []
        # Moves a refund on when it is looked at: (look number, status), in order.
        self.refund_moves: list[tuple[int, str]] = []

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
    async def record_invoice(self, snapshot: InvoiceSnapshot) -> bool:
        recorded = self.records.get(snapshot.invoice_id)
        if recorded is not None and recorded.revision >= snapshot.revision:
            return False
        self.records[snapshot.invoice_id] = snapshot
        return True

    @activity.defn(name="load_invoice")
    async def load_invoice(self, invoice_id: str) -> InvoiceSnapshot | None:
        return self.records.get(invoice_id)

    @activity.defn(name="initialize_transaction")
    async def initialize_transaction(self, request: InitializeInput) -> PaymentLink:
        return PaymentLink(
            reference=request.reference,
            authorization_url=f"https://checkout.example/{request.reference}",
            access_code=request.reference,
        )

    @activity.defn(name="verify_transaction")
    async def verify_transaction(self, reference: str) -> Verification:
        self.verifies[reference] += 1
        asked_at = activity.info().current_attempt_scheduled_time
        self.verified_at[reference].append(asked_at)
        # Paystack is slow until the test lets it answer.
        if self.held is not None and (self.held_from is None or asked_at >= self.held_from):
            await self.held.wait()
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

    @activity.defn(name="store_event")
    async def store_event(self, event: InvoiceEvent) -> list[str]:
        self.events.append(event)
        return self.endpoints

    @activity.defn(name="redelivery_targets")
    async def redelivery_targets(self, event_id: str) -> list[str]:
        return self.endpoints

    @activity.defn(name="deliver_event")
    async def deliver_event(self, attempt: DeliveryAttempt) -> DeliveryOutcome:
        """The merchant's next answer (delivered once the test's list runs out); a failure
        on the last attempt is the attempt's own `gave_up`, as the real one records."""
        self.attempts.append((attempt, activity.info().current_attempt_scheduled_time))
        outcome = self.merchant_answers.pop(0) if self.merchant_answers else None
        if outcome is None:
            return DeliveryOutcome.DELIVERED
        if outcome is DeliveryOutcome.FAILED and attempt.next_attempt_at is None:
            return DeliveryOutcome.GAVE_UP
        return outcome

    @activity.defn(name="send_customer_email")
    async def send_customer_email(self, email: CustomerEmailInput) -> str:
        self.emails.append(email)
        return f"<{email.kind.value}.{email.invoice.invoice_id}@test>"

    def event_types(self, invoice_id: str) -> list[str]:
        return [e.type.value for e in self.events if e.invoice.invoice_id == invoice_id]


# The real defaults: polls from a minute to twelve hours, a 72 h late-payment window.
SETTINGS = Settings(
    temporal_task_queue=QUEUE,
    temporal_paystack_task_queue=QUEUE,
    temporal_events_task_queue=QUEUE,
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
