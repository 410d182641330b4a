"""Inputs and outputs of the invoice workflow, shared with the API that starts it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from domain.disputes import Dispute
from domain.events import InvoiceEvent, RecordedChange
from domain.invoice import InvoiceRequest, InvoiceSnapshot, InvoiceStatus
from domain.refunds import REFUND_POLL_SCHEDULE, Refund, RefundStatus

# Search attributes on every invoice workflow, for the Temporal UI and `temporal workflow list`.
INVOICE_STATUS = SearchAttributeKey.for_keyword("InvoiceStatus")
CUSTOMER_EMAIL = SearchAttributeKey.for_keyword("CustomerEmail")
AMOUNT_MINOR = SearchAttributeKey.for_int("AmountMinor")
CURRENCY = SearchAttributeKey.for_keyword("Currency")
DUE_AT = SearchAttributeKey.for_datetime("DueAt")
# The most pressing status among the invoice's refunds (`needs_attention` first), once it
# has one: `RefundState = "needs_attention"` lists the refunds waiting for an operator.
REFUND_STATE = SearchAttributeKey.for_keyword("RefundState")
# `overdue` while a dispute is open past its due date, else the status of an open one, else
# how the last ended: `DisputeState = "overdue"` lists the disputes operators must answer.
DISPUTE_STATE = SearchAttributeKey.for_keyword("DisputeState")
SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[Any], ...] = (
    INVOICE_STATUS,
    CUSTOMER_EMAIL,
    AMOUNT_MINOR,
    CURRENCY,
    DUE_AT,
    REFUND_STATE,
    DISPUTE_STATE,
)
REFUND_STATE_ORDER = (
    RefundStatus.NEEDS_ATTENTION,
    RefundStatus.REQUESTED,
    RefundStatus.PENDING,
    RefundStatus.PROCESSING,
    RefundStatus.FAILED,
    RefundStatus.PROCESSED,
)


def dispute_state_of(disputes: list[Dispute]) -> str | None:
    open_ones = [d for d in disputes if d.status.is_open]
    if any(d.overdue for d in open_ones):
        return "overdue"
    latest = open_ones or disputes
    return latest[-1].status.value if latest else None


def refund_state_of(refunds: list[Refund]) -> str | None:
    statuses = {refund.status for refund in refunds}
    return next((s.value for s in REFUND_STATE_ORDER if s in statuses), None)


def search_attribute_kinds() -> dict[str, str]:
    """Names and kinds as the temporal CLI spells them, e.g. {"InvoiceStatus": "Keyword"}."""
    return {key.name: key.indexed_value_type.name.title() for key in SEARCH_ATTRIBUTES}


def _search_attribute_values(
    invoice: InvoiceRequest | InvoiceSnapshot, status: InvoiceStatus, customer_email: bool
) -> list[tuple[SearchAttributeKey[Any], Any]]:
    # Search attributes are stored in clear (no codec reaches them): the email is optional.
    email = [(CUSTOMER_EMAIL, invoice.customer_email)] if customer_email else []
    return [
        (INVOICE_STATUS, status.value),
        *email,
        (AMOUNT_MINOR, invoice.amount),
        (CURRENCY, invoice.currency),
        (DUE_AT, invoice.due_at),
    ]


def initial_search_attributes(
    invoice: InvoiceRequest | InvoiceSnapshot,
    status: InvoiceStatus = InvoiceStatus.PENDING,
    *,
    customer_email: bool,
) -> TypedSearchAttributes:
    """What a run starts with: a new invoice, or a recorded one woken in `status`; with
    CustomerEmail or without (PAYRECON_CUSTOMER_EMAIL_SEARCH_ATTRIBUTE, decided by the
    starter: the workflow follows what its run started with)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(key, value)
            for key, value in _search_attribute_values(invoice, status, customer_email)
        ]
    )


def search_attributes_of(
    invoice: InvoiceSnapshot, *, customer_email: bool
) -> list[SearchAttributeUpdate[Any]]:
    """The same as upserts, for a run that resumes an invoice from its record."""
    values = _search_attribute_values(invoice, invoice.status, customer_email)
    return [key.value_set(value) for key, value in values]


def workflow_id_for(invoice_id: str) -> str:
    return f"invoice-{invoice_id}"


# A moment every clock has passed: a check due at it is due now.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)
# Notices of one kind remembered, to answer a repeated one with nothing: the oldest is
# forgotten first (a repeat of it costs one verify, never a missed notice).
REMEMBERED_NOTICES = 32


@dataclass
class InvoiceState:
    """Everything an invoice's run keeps between its steps, carried whole to the next run
    when the history grows long (continue-as-new): a new field is one edit here."""

    # None until the invoice is created, or found in its record.
    invoice: InvoiceSnapshot | None = None
    # The highest revision the database holds; the events of changes it does not hold yet.
    recorded_revision: int = 0
    unrecorded: list[InvoiceEvent] = field(default_factory=list)
    poll_count: int = 0
    next_poll_at: datetime = NEVER
    cancel_requested: bool = False
    # Notices waiting to be acted on: a payment or a refund (one look answers every such
    # notice so far), and the disputes named.
    payment_notified: bool = False
    refund_notified: bool = False
    disputes_to_check: list[int] = field(default_factory=list)
    # The latest notices of each kind (payment, refund, dispute), by their identity.
    seen_notices: dict[str, list[str]] = field(default_factory=dict)
    refund_poll_count: int = 0
    next_refund_poll_at: datetime = NEVER

    def first_sight(self, kind: str, key: str) -> bool:
        """Whether this notice is new (and remembers it): a repeat changes nothing."""
        seen = self.seen_notices.setdefault(kind, [])
        if key in seen:
            return False
        seen.append(key)
        del seen[:-REMEMBERED_NOTICES]
        return True


@dataclass
class InvoiceWorkflowInput:
    request: InvoiceRequest
    # Seconds between verify polls; the last interval repeats.
    poll_schedule: list[float]
    # How long an expired or cancelled invoice keeps watching for a late payment.
    late_payment_window: float
    # The API request that started the workflow; tells a first create from a repeat.
    request_id: str
    carried: InvoiceState | None = None
    # Where Paystack activities run (rate-capped); None: the workflow's own queue.
    paystack_task_queue: str | None = None
    # Started to reach a recorded invoice: with no record, fail rather than create one.
    resume_only: bool = False
    # Continue as new after this many history events, besides when Temporal suggests it.
    continue_as_new_after_events: int | None = None
    # Seconds between checks of a refund in flight with Paystack; the last repeats.
    refund_poll_schedule: list[float] = field(default_factory=lambda: list(REFUND_POLL_SCHEDULE))
    # How long a refund request waits for Paystack's word before it is answered `requested`.
    refund_answer_within: float = 10.0


@dataclass
class OpenInvoice:
    """The update sent with every POST /invoices: wait for the payment link."""

    fingerprint: str
    request_id: str


@dataclass
class OpenedInvoice:
    invoice: InvoiceSnapshot
    created: bool
    # The change that made the invoice, when the answer comes before its record: the
    # caller records it (recording is idempotent) before handing out the payment link.
    unrecorded: RecordedChange | None = None


@dataclass
class PaymentCheck:
    """The invoice after a verify-now, and what Paystack last said of its transaction
    (`ongoing`, `pending`, `failed`, `success`…; None if it has not been asked)."""

    invoice: InvoiceSnapshot
    paystack_status: str | None = None
    verified_at: datetime | None = None


@dataclass
class PaymentNotice:
    """A signed Paystack `charge.success`, relayed by the API. A hint to verify, never proof."""

    reference: str
    transaction_id: int | None = None
    amount: int | None = None
    currency: str | None = None
    paid_at: datetime | None = None

    @property
    def dedupe_key(self) -> str:
        paid_at = self.paid_at.isoformat() if self.paid_at else ""
        return f"{self.transaction_id}:{self.amount}:{self.currency}:{paid_at}"


@dataclass
class RefundRequest:
    """POST /invoices/{id}/refunds: a refund of `amount` (None: all that is refundable)."""

    refund_id: str
    initiated_by: str
    fingerprint: str
    amount: int | None = None
    reason: str | None = None
    idempotency_key: str | None = None


@dataclass
class RefundAnswer:
    invoice: InvoiceSnapshot
    refund: Refund
    # False: the refund existed already (the same Idempotency-Key and body).
    created: bool


@dataclass
class RefundRetry:
    """POST /refunds/{id}/retry: the customer's bank account for a refund that needs it, by
    the id of its sealed row (db/bank_accounts.py); the account itself only in updates
    made before that (0.1.0)."""

    refund_id: str
    currency: str
    account_number: str = ""
    bank_id: str = ""
    account_id: str | None = None


@dataclass
class RefundNotice:
    """A signed Paystack `refund.*` webhook, relayed by the API: a reason to ask Paystack
    about the invoice's refunds (its body carries no refund id)."""

    event: str
    status: str | None = None
    amount: int | None = None
    refund_reference: str | None = None

    @property
    def dedupe_key(self) -> str:
        return f"{self.event}:{self.status}:{self.amount}:{self.refund_reference}"


@dataclass
class DisputeNotice:
    """A signed Paystack `charge.dispute.*` webhook, relayed by the API: a reason to ask
    Paystack about the dispute it names."""

    event: str
    dispute_id: int
    status: str | None = None

    @property
    def dedupe_key(self) -> str:
        return f"{self.event}:{self.dispute_id}:{self.status}"


@dataclass
class DisputeDecision:
    """POST /disputes/{id}/resolve: the merchant accepts (with a refund) or declines."""

    dispute_id: int
    resolution: str
    message: str
    refund_amount: int
    uploaded_filename: str
    evidence: int | None = None


@dataclass
class DisputeAnswer:
    invoice: InvoiceSnapshot
    dispute: Dispute
