"""A dispute as payrecon keeps it: a card holder's claim against an invoice's payment, as
Paystack last described it, with payrecon's own flag for one left open past its due date.

Plain dataclasses only: workflow code imports this module, so it must stay free of I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class DisputeStatus(StrEnum):
    AWAITING_MERCHANT_FEEDBACK = "awaiting_merchant_feedback"
    AWAITING_BANK_FEEDBACK = "awaiting_bank_feedback"
    PENDING = "pending"
    RESOLVED = "resolved"
    ARCHIVED = "archived"

    @classmethod
    def from_paystack(cls, status: str) -> DisputeStatus:
        """Paystack writes `awaiting-merchant-feedback`; payrecon's values use underscores."""
        return cls(status.replace("-", "_"))

    @property
    def is_open(self) -> bool:
        return self not in (DisputeStatus.RESOLVED, DisputeStatus.ARCHIVED)


class DisputeResolution(StrEnum):
    MERCHANT_ACCEPTED = "merchant_accepted"
    DECLINED = "declined"
    AUTO_ACCEPTED = "auto_accepted"

    @classmethod
    def from_paystack(cls, resolution: str) -> DisputeResolution:
        return cls(resolution.replace("-", "_"))

    @property
    def paystack(self) -> str:
        return self.value.replace("_", "-")


@dataclass
class Dispute:
    """One dispute of the invoice's payment. `revision` is the invoice's revision at the
    dispute's last change; `overdue`: still open when its due date passed."""

    dispute_id: int
    invoice_id: str
    status: DisputeStatus
    updated_at: datetime
    revision: int
    category: str | None = None
    reason: str | None = None
    due_at: datetime | None = None
    resolution: DisputeResolution | None = None
    refund_amount: int | None = None
    currency: str | None = None
    overdue: bool = False

    def same_as(self, other: Dispute) -> bool:
        """Whether Paystack's word changes nothing (revisions and times aside)."""
        return (
            self.status,
            self.category,
            self.reason,
            self.due_at,
            self.resolution,
            self.refund_amount,
            self.overdue,
        ) == (
            other.status,
            other.category,
            other.reason,
            other.due_at,
            other.resolution,
            other.refund_amount,
            other.overdue,
        )
