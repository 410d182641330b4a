"""An invoice reachable for its whole life, on the time-skipping test server: its workflow
completes once nothing is left to wait for, and a request months later reaches its single
writer again through update-with-start (workflows/starter.py).

Day-long timers need skipped time, so Paystack and the database are test activities here,
with the real activities' names; the end-to-end tests run the real ones."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from pydantic import SecretStr
from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.paystack import InitializeInput
from config import Settings
from devstack.processes import BIN_DIR
from domain.errors import ErrorType
from domain.invoice import InvoiceRequest, InvoiceSnapshot, InvoiceStatus, ReviewReason
from domain.reconcile import Verification
from paystack.client import PaymentLink
from workflows.invoice import InvoiceWorkflow
from workflows.starter import invoice_start, reach_invoice
from workflows.types import SEARCH_ATTRIBUTES, OpenInvoice, PaymentNotice, workflow_id_for

QUEUE = "lifetime"
AMOUNT = 250_000


class PaystackAndDatabase:
    """Paystack's answers as the test sets them, and the invoice records as the projection
    keeps them (a revision never goes backwards)."""

    def __init__(self) -> None:
        self.records: dict[str, InvoiceSnapshot] = {}
        self.charges: dict[str, Verification] = {}
        self.verifies: Counter[str] = Counter()

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
        return self.charges.get(
            reference, Verification(reference=reference, found=True, status="abandoned")
        )


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN_DIR / "temporal-test-server")
    )
    # The test server knows no search attributes until they are added.
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
                for key in SEARCH_ATTRIBUTES
            },
        )
    )
    yield env
    await env.shutdown()


@pytest.fixture
async def books(env: WorkflowEnvironment) -> AsyncIterator[PaystackAndDatabase]:
    books = PaystackAndDatabase()
    async with Worker(
        env.client,
        task_queue=QUEUE,
        workflows=[InvoiceWorkflow],
        activities=[
            books.record_invoice,
            books.load_invoice,
            books.initialize_transaction,
            books.verify_transaction,
        ],
    ):
        yield books


# The real defaults: polls from a minute to twelve hours, a 72 h late-payment window.
SETTINGS = Settings(
    temporal_task_queue=QUEUE,
    temporal_paystack_task_queue=QUEUE,
    payrecon_api_keys=[SecretStr("k")],
)


async def create(env: WorkflowEnvironment, due_in: timedelta) -> InvoiceSnapshot:
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
        start_workflow_operation=invoice_start(SETTINGS, request, request_id="first"),
    )
    assert opened.created and opened.invoice.status is InvoiceStatus.PENDING
    return opened.invoice


async def test_a_paid_invoice_is_woken_after_180_days(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    invoice = await create(env, due_in=timedelta(hours=24))
    handle = env.client.get_workflow_handle_for(
        InvoiceWorkflow.run, workflow_id_for(invoice.invoice_id)
    )
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
        env.client, SETTINGS, books.records[invoice.invoice_id], InvoiceWorkflow.verify
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
    handle = env.client.get_workflow_handle_for(
        InvoiceWorkflow.run, workflow_id_for(invoice.invoice_id)
    )
    # Due in 24 h, then 72 h watching for a late payment: the workflow completes expired.
    await env.sleep(timedelta(hours=24 + 72, minutes=1))
    expired = await handle.result()
    assert expired.status is InvoiceStatus.EXPIRED

    books.pay(invoice.invoice_id)
    await env.sleep(timedelta(days=180))
    woken: InvoiceSnapshot = await reach_invoice(
        env.client, SETTINGS, books.records[invoice.invoice_id], InvoiceWorkflow.verify
    )

    assert woken.status is InvoiceStatus.NEEDS_REVIEW
    assert woken.review_reason is ReviewReason.PAID_AFTER_EXPIRY
    assert woken.revision == expired.revision + 1 and woken.amount_paid == AMOUNT
    assert books.records[invoice.invoice_id] == woken


async def test_two_requests_at_once_share_one_writer(
    env: WorkflowEnvironment, books: PaystackAndDatabase
) -> None:
    invoice = await create(env, due_in=timedelta(hours=1))
    await env.sleep(timedelta(hours=1 + 72, minutes=1))
    handle = env.client.get_workflow_handle_for(
        InvoiceWorkflow.run, workflow_id_for(invoice.invoice_id)
    )
    expired = await handle.result()
    books.pay(invoice.invoice_id)

    recorded = books.records[invoice.invoice_id]
    first, second = await asyncio.gather(
        reach_invoice(env.client, SETTINGS, recorded, InvoiceWorkflow.verify),
        reach_invoice(env.client, SETTINGS, recorded, InvoiceWorkflow.verify),
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
        await reach_invoice(env.client, SETTINGS, ghost, InvoiceWorkflow.verify)
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == ErrorType.INVOICE_NOT_FOUND
    assert ghost.invoice_id not in books.records and not books.verifies[ghost.invoice_id]
