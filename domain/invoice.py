"""The invoice as every part of payrecon sees it: statuses, reasons and the snapshot the
workflow keeps and the database mirrors.

Plain dataclasses only: workflow code imports this module, so it must stay free of I/O.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from domain.disputes import Dispute
from domain.refunds import Refund, refundable, refunded


class InvoiceStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    NEEDS_REVIEW = "needs_review"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"

    @property
    def is_final(self) -> bool:
        """Past `pending`: the payment question is answered (refunds may still follow)."""
        return self is not InvoiceStatus.PENDING


# The only moves between statuses: a payment (or its absence) decides the first; a late
# payment reopens an expired or cancelled invoice for review; processed refunds come last.
MOVES: dict[InvoiceStatus, frozenset[InvoiceStatus]] = {
    InvoiceStatus.PENDING: frozenset(
        {
            InvoiceStatus.PAID,
            InvoiceStatus.NEEDS_REVIEW,
            InvoiceStatus.EXPIRED,
            InvoiceStatus.CANCELLED,
        }
    ),
    InvoiceStatus.EXPIRED: frozenset({InvoiceStatus.NEEDS_REVIEW}),
    InvoiceStatus.CANCELLED: frozenset({InvoiceStatus.NEEDS_REVIEW}),
    InvoiceStatus.PAID: frozenset({InvoiceStatus.PARTIALLY_REFUNDED, InvoiceStatus.REFUNDED}),
    InvoiceStatus.NEEDS_REVIEW: frozenset(
        {InvoiceStatus.PARTIALLY_REFUNDED, InvoiceStatus.REFUNDED}
    ),
    InvoiceStatus.PARTIALLY_REFUNDED: frozenset({InvoiceStatus.REFUNDED}),
    InvoiceStatus.REFUNDED: frozenset(),
}


def follows_the_graph(statuses: list[str]) -> bool:
    """Whether a status history starts at `pending` and takes only the moves above."""
    path = [InvoiceStatus(status) for status in statuses]
    return (
        bool(path)
        and path[0] is InvoiceStatus.PENDING
        and all(after in MOVES[before] for before, after in itertools.pairwise(path))
    )


# Where a payment, once recorded, may be refunded from (needs_review: only with a payment).
REFUNDABLE_STATUSES = (
    InvoiceStatus.PAID,
    InvoiceStatus.NEEDS_REVIEW,
    InvoiceStatus.PARTIALLY_REFUNDED,
)
# Invoices whose payment Paystack took and payrecon accepted as the invoice's.
PAID_STATUSES = (InvoiceStatus.PAID, InvoiceStatus.PARTIALLY_REFUNDED, InvoiceStatus.REFUNDED)


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


Part = TypeVar("Part")


def put(parts: list[Part], part: Part, key: Callable[[Part], object]) -> list[Part]:
    """`parts` with `part` in place of the one with its key, or added at the end."""
    if any(key(p) == key(part) for p in parts):
        return [part if key(p) == key(part) else p for p in parts]
    return [*parts, part]


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
    # What has gone back to the customer (processed refunds), and every refund asked for.
    amount_refunded: int = 0
    refunds: list[Refund] = field(default_factory=list)
    # Card holders' claims against the payment, as Paystack last described them.
    disputes: list[Dispute] = field(default_factory=list)

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

    def dispute(self, dispute_id: int) -> Dispute | None:
        return next((d for d in self.disputes if d.dispute_id == dispute_id), None)

    def refund(self, refund_id: str) -> Refund | None:
        return next((r for r in self.refunds if r.refund_id == refund_id), None)

    @property
    def refundable(self) -> int:
        """What can still be refunded: nothing before a payment; then the amount paid less
        every refund processed or in flight."""
        if self.status not in REFUNDABLE_STATUSES or not self.amount_paid:
            return 0
        return refundable(self.amount_paid, self.refunds)

    def status_after_refunds(self) -> InvoiceStatus:
        """`refunded` once processed refunds cover the payment, `partially_refunded` once any
        is processed; otherwise as it is (a paid or needs_review invoice keeps its status
        while refunds are in flight)."""
        done = refunded(self.refunds)
        if done == 0 or self.amount_paid is None:
            return self.status
        return (
            InvoiceStatus.REFUNDED if done >= self.amount_paid else InvoiceStatus.PARTIALLY_REFUNDED
        )

    @property
    def refunds_in_flight(self) -> list[Refund]:
        return [r for r in self.refunds if not r.status.is_final]

    @property
    def refund_statuses(self) -> list[str]:
        """Each status its refunds are in, once: the RefundStatuses search attribute."""
        return sorted({r.status.value for r in self.refunds})


def _fields_of(source: object, shape: type[Any]) -> dict[str, Any]:
    """`source`'s values for the fields of the dataclass `shape`."""
    return {field.name: getattr(source, field.name) for field in dataclasses.fields(shape)}
