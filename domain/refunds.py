"""A refund as payrecon keeps it, and the arithmetic that keeps refunds within what was paid.

A refund's statuses and the only moves between them:

    requested -> pending -> processing -> processed | failed | needs_attention
    needs_attention -> processing (after a retry with the customer's account)

`requested`: payrecon has it, Paystack has not confirmed it yet. Paystack's webhooks can
arrive late, out of order or not at all, so a refund may skip ahead (`pending` straight to
`processed`) but never go back, and a final status never changes.

Plain dataclasses only: workflow code imports this module, so it must stay free of I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

REFUND_ID_PATTERN = r"^rf_[0-9a-f]{24}$"
# A refund's checks with Paystack when no webhook comes: 1 m, 5 m, 15 m, 1 h, 3 h, 6 h, then
# daily (Paystack takes up to about ten working days).
REFUND_POLL_SCHEDULE = (60.0, 300.0, 900.0, 3600.0, 10800.0, 21600.0, 86400.0)
_REFUND_ID = re.compile(REFUND_ID_PATTERN)


class RefundStatus(StrEnum):
    REQUESTED = "requested"
    PENDING = "pending"
    PROCESSING = "processing"
    PROCESSED = "processed"
    FAILED = "failed"
    NEEDS_ATTENTION = "needs_attention"

    @classmethod
    def from_paystack(cls, status: str) -> RefundStatus:
        """Paystack writes `needs-attention`; payrecon's values use underscores."""
        return cls(status.replace("-", "_"))

    @property
    def is_final(self) -> bool:
        return self in (RefundStatus.PROCESSED, RefundStatus.FAILED)

    @property
    def holds_money(self) -> bool:
        """Whether the refund's amount is taken from what can still be refunded: every
        status but `failed` (in flight, or gone to the customer)."""
        return self is not RefundStatus.FAILED


# Each status's place on the way to its end; a move goes forward, or from needs_attention
# back to processing once the customer's account is sent.
_RANK = {
    RefundStatus.REQUESTED: 0,
    RefundStatus.PENDING: 1,
    RefundStatus.PROCESSING: 2,
    RefundStatus.NEEDS_ATTENTION: 3,
    RefundStatus.PROCESSED: 4,
    RefundStatus.FAILED: 4,
}


def can_move(current: RefundStatus, to: RefundStatus) -> bool:
    """Whether Paystack's word `to` may replace `current`: forward only, never out of a
    final status, and needs_attention back to processing (a retry)."""
    if current.is_final or current is to:
        return False
    if current is RefundStatus.NEEDS_ATTENTION:
        return to is not RefundStatus.PENDING and to is not RefundStatus.REQUESTED
    return _RANK[to] > _RANK[current]


class HasAmount(Protocol):
    """What the arithmetic needs of one refund."""

    @property
    def amount(self) -> int: ...

    @property
    def status(self) -> RefundStatus: ...


@dataclass(frozen=True)
class RefundAmount:
    amount: int
    status: RefundStatus


def refundable(amount_paid: int, refunds: Iterable[HasAmount]) -> int:
    """What can still be refunded: the amount paid less every refund processed or in
    flight (requested, pending, processing, needs_attention). Never below zero."""
    held = sum(refund.amount for refund in refunds if refund.status.holds_money)
    return max(0, amount_paid - held)


def refunded(refunds: Iterable[HasAmount]) -> int:
    """What has gone back to the customer: processed refunds only."""
    return sum(r.amount for r in refunds if r.status is RefundStatus.PROCESSED)


class RefundOrigin(StrEnum):
    """Who asked for a refund, besides an API caller (`api:<caller name>`)."""

    # Made outside payrecon (Paystack's dashboard), learned from its webhook or a sweep.
    PAYSTACK_DASHBOARD = "paystack_dashboard"
    # Made by Paystack for a dispute the merchant accepted.
    DISPUTE = "dispute"


def initiated_by_caller(caller: str) -> str:
    return f"api:{caller}"


@dataclass
class Refund:
    """One refund of an invoice's payment, as the invoice's workflow keeps it (and the
    database mirrors it). `revision` is the invoice's revision at the refund's last change."""

    refund_id: str
    invoice_id: str
    amount: int
    currency: str
    status: RefundStatus
    initiated_by: str
    created_at: datetime
    updated_at: datetime
    revision: int
    reason: str | None = None
    paystack_refund_id: int | None = None
    # The Paystack transaction it sends money back from.
    paystack_transaction_id: int | None = None
    # Paystack's words when it refused the refund.
    failure_reason: str | None = None
    idempotency_key: str | None = None
    # A digest of the request body, so a repeated Idempotency-Key with another body is refused.
    fingerprint: str = ""


def refund_id_for_key(caller: str, invoice_id: str, idempotency_key: str) -> str:
    """The same caller's same Idempotency-Key on one invoice always names the same refund."""
    scoped = f"{caller}\0{invoice_id}\0{idempotency_key}"
    return f"rf_{hashlib.sha256(scoped.encode()).hexdigest()[:24]}"


def refund_id_for_paystack(paystack_refund_id: int) -> str:
    """payrecon's id for a refund made outside it: the same whichever run learns of it."""
    return f"rf_{hashlib.sha256(f'paystack:{paystack_refund_id}'.encode()).hexdigest()[:24]}"


def is_refund_id(value: str) -> bool:
    return _REFUND_ID.match(value) is not None


def merchant_note_for(refund_id: str) -> str:
    """What payrecon writes in Paystack's `merchant_note`: its own refund id, so a refund
    whose create went unanswered is found again, never made twice."""
    return f"payrecon refund {refund_id}"


def refund_id_in(note: str | None) -> str | None:
    """The payrecon refund id a Paystack refund's `merchant_note` carries, if any."""
    if not note:
        return None
    found = re.search(r"\brf_[0-9a-f]{24}\b", note)
    return found.group(0) if found else None
