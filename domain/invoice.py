"""The invoice as every part of payrecon sees it: statuses, reasons and the snapshot the
workflow keeps and the database mirrors.

Plain dataclasses only: workflow code imports this module, so it must stay free of I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class InvoiceStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    NEEDS_REVIEW = "needs_review"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self is not InvoiceStatus.PENDING


class ReviewReason(StrEnum):
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    PAID_AFTER_EXPIRY = "paid_after_expiry"
    PAID_AFTER_CANCEL = "paid_after_cancel"


def paystack_reference_for(invoice_id: str, attempt: int) -> str:
    """The invoice id is its Paystack reference. Only when Paystack already holds that
    reference but its payment link was lost does the invoice move to `<id>.2`, `<id>.3`."""
    return invoice_id if attempt == 1 else f"{invoice_id}.{attempt}"


def invoice_id_from_reference(reference: str) -> str:
    return reference.split(".", 1)[0]


# Paystack's currencies and the smallest amount it accepts, in subunits.
MINIMUM_AMOUNT: dict[str, int] = {"NGN": 5000, "GHS": 10, "ZAR": 100, "KES": 300, "USD": 200}
SUPPORTED_CURRENCIES = tuple(MINIMUM_AMOUNT)


@dataclass
class InvoiceRequest:
    """What a backend service asked for; fixed for the life of the invoice."""

    invoice_id: str
    customer_email: str
    amount: int
    currency: str
    due_at: datetime
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    # A digest of the request body, so a repeated Idempotency-Key with another body is refused.
    fingerprint: str = ""


@dataclass
class InvoiceSnapshot:
    """The invoice's current state. `revision` grows by one at every change, so the
    database projection can apply snapshots idempotently and never move backwards."""

    invoice_id: str
    workflow_id: str
    status: InvoiceStatus
    customer_email: str
    amount: int
    currency: str
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    revision: int
    fingerprint: str
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    authorization_url: str | None = None
    access_code: str | None = None
    paid_at: datetime | None = None
    amount_paid: int | None = None
    paystack_transaction_id: int | None = None
    paystack_reference: str | None = None
    review_reason: ReviewReason | None = None
