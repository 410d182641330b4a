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

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

REFUND_ID_PATTERN = r"^rf_[0-9a-f]{24}$"
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


@dataclass(frozen=True)
class RefundAmount:
    """What the arithmetic needs of one refund."""

    amount: int
    status: RefundStatus


def refundable(amount_paid: int, refunds: Iterable[RefundAmount]) -> int:
    """What can still be refunded: the amount paid less every refund processed or in
    flight (requested, pending, processing, needs_attention). Never below zero."""
    held = sum(refund.amount for refund in refunds if refund.status.holds_money)
    return max(0, amount_paid - held)


def refunded(refunds: Iterable[RefundAmount]) -> int:
    """What has gone back to the customer: processed refunds only."""
    return sum(r.amount for r in refunds if r.status is RefundStatus.PROCESSED)


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
