"""Inputs and outputs of the invoice workflow, shared with the API that starts it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from domain import events
from domain.invoice import InvoiceRequest, InvoiceSnapshot, InvoiceStatus

# Search attributes on every invoice workflow, for the Temporal UI and `temporal workflow list`.
INVOICE_STATUS = SearchAttributeKey.for_keyword("InvoiceStatus")
CUSTOMER_EMAIL = SearchAttributeKey.for_keyword("CustomerEmail")
AMOUNT_MINOR = SearchAttributeKey.for_int("AmountMinor")
CURRENCY = SearchAttributeKey.for_keyword("Currency")
DUE_AT = SearchAttributeKey.for_datetime("DueAt")
SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[Any], ...] = (
    INVOICE_STATUS,
    CUSTOMER_EMAIL,
    AMOUNT_MINOR,
    CURRENCY,
    DUE_AT,
)


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


@dataclass
class CarriedState:
    """What one run hands to the next when its history grows long (continue-as-new)."""

    invoice: InvoiceSnapshot
    poll_count: int
    next_poll_at: datetime
    seen_notices: list[str]
    payment_notified: bool
    cancel_requested: bool


@dataclass
class EventPolicy:
    """How an invoice's events are delivered (workflows/events.py): the settings' values
    (config.py), or their defaults for runs started before events were."""

    # Seconds between attempts to one endpoint; the last repeats. Jittered by ±20 %.
    retry_schedule: list[float] = field(default_factory=lambda: list(events.RETRY_SCHEDULE))
    retry_for: float = events.RETRY_FOR_SECONDS
    attempt_timeout: float = events.ATTEMPT_TIMEOUT_SECONDS
    disable_after: float = events.DISABLE_AFTER_SECONDS
    # Where event workflows run; None: the invoice's own queue.
    task_queue: str | None = None


@dataclass
class InvoiceWorkflowInput:
    request: InvoiceRequest
    # Seconds between verify polls; the last interval repeats.
    poll_schedule: list[float]
    # How long an expired or cancelled invoice keeps watching for a late payment.
    late_payment_window: float
    # The API request that started the workflow; tells a first create from a repeat.
    request_id: str
    carried: CarriedState | None = None
    # Where Paystack activities run (rate-capped); None: the workflow's own queue.
    paystack_task_queue: str | None = None
    # Started to reach a recorded invoice: with no record, fail rather than create one.
    resume_only: bool = False
    # Continue as new after this many history events, besides when Temporal suggests it.
    continue_as_new_after_events: int | None = None
    events: EventPolicy = field(default_factory=EventPolicy)


@dataclass
class OpenInvoice:
    """The update sent with every POST /invoices: wait for the payment link."""

    fingerprint: str
    request_id: str


@dataclass
class OpenedInvoice:
    invoice: InvoiceSnapshot
    created: bool


@dataclass
class PaymentCheck:
    """The invoice after a check-now, and what Paystack last said of its transaction
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
