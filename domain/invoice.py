"""The invoice as every part of payrecon sees it: statuses, reasons and the snapshot the
workflow keeps and the database mirrors.

Plain dataclasses only: workflow code imports this module, so it must stay free of I/O.
"""

from __future__ import annotations

import dataclasses
import re
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


# Invoice ids are Paystack references without '.', which marks a replacement reference.
INVOICE_ID_PATTERN = r"^[A-Za-z0-9-]{1,64}$"
# The caller an unnamed API key belongs to (every invoice made before keys had names).
DEFAULT_CALLER = "default"
_OUR_REFERENCE = re.compile(r"^[A-Za-z0-9-]{1,64}(\.[0-9]{1,2})?$")


def is_invoice_reference(reference: str) -> bool:
    """Whether a Paystack reference has the shape of one of ours: `<id>` or `<id>.<n>`."""
    return _OUR_REFERENCE.match(reference) is not None


def paystack_reference_for(invoice_id: str, attempt: int) -> str:
    """The invoice id is its Paystack reference. Only when Paystack already holds that
    reference but its payment link was lost does the invoice move to `<id>.2`, `<id>.3`."""
    return invoice_id if attempt == 1 else f"{invoice_id}.{attempt}"


def invoice_id_from_reference(reference: str) -> str:
    return reference.split(".", 1)[0]


class Currency(StrEnum):
    """The currencies Paystack settles. Amounts are always in the subunit."""

    NGN = "NGN"
    GHS = "GHS"
    ZAR = "ZAR"
    KES = "KES"
    USD = "USD"

    @property
    def subunit(self) -> str:
        return _CURRENCY_RULES[self][1]

    @property
    def minimum_amount(self) -> int:
        """The smallest amount Paystack accepts, in the subunit."""
        return _CURRENCY_RULES[self][0]


_CURRENCY_RULES: dict[Currency, tuple[int, str]] = {
    Currency.NGN: (5000, "kobo"),
    Currency.GHS: (10, "pesewas"),
    Currency.ZAR: (100, "cents"),
    Currency.KES: (300, "cents"),
    Currency.USD: (200, "cents"),
}


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
    # Who created it (its API key's name): only they, and operators, see it.
    caller: str = DEFAULT_CALLER
    # Where the checkout return sends the customer: paid, or not (given at creation only).
    success_url: str | None = None
    cancel_url: str | None = None
    # Email the customer the invoice with its payment link when it is created.
    send_invoice_email: bool = False


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
    caller: str = DEFAULT_CALLER
    success_url: str | None = None
    cancel_url: str | None = None
    send_invoice_email: bool = False

    @classmethod
    def opened(
        cls,
        request: InvoiceRequest,
        *,
        workflow_id: str,
        at: datetime,
        authorization_url: str,
        access_code: str,
        paystack_reference: str,
    ) -> InvoiceSnapshot:
        """A new invoice, pending with its payment link: revision 1."""
        return cls(
            **_fields_of(request, InvoiceRequest),
            workflow_id=workflow_id,
            status=InvoiceStatus.PENDING,
            created_at=at,
            updated_at=at,
            revision=1,
            authorization_url=authorization_url,
            access_code=access_code,
            paystack_reference=paystack_reference,
        )

    def request(self) -> InvoiceRequest:
        """What was asked for, as the invoice records it."""
        return InvoiceRequest(**_fields_of(self, InvoiceRequest))


def _fields_of(source: object, shape: type[Any]) -> dict[str, Any]:
    """`source`'s values for the fields of the dataclass `shape`."""
    return {field.name: getattr(source, field.name) for field in dataclasses.fields(shape)}
