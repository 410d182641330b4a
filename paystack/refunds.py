"""Paystack's refunds: money sent back for a successful transaction, in part or in full.

Paystack takes no idempotency key for a refund: payrecon carries its own refund id in
`merchant_note`, and finds a refund whose create went unanswered by that note."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from paystack.fields import optional_text, parse_amount, parse_timestamp
from paystack.transactions import MalformedRecord

# Paystack's statuses; the last two are final, needs-attention waits for the customer's
# bank account (`retry_with_customer_details`).
REFUND_STATUSES = ("pending", "processing", "needs-attention", "processed", "failed")


@dataclass(frozen=True)
class RefundRecord:
    id: int
    transaction_id: int | None
    transaction_reference: str | None
    amount: int
    currency: str
    status: str
    merchant_note: str | None
    customer_note: str | None
    dispute_id: int | None
    created_at: datetime | None
    updated_at: datetime | None
    refunded_at: datetime | None


def refund_record(data: dict[str, Any]) -> RefundRecord:
    """One refund as `GET /refund`, `GET /refund/{id}` and `POST /refund` show it: the
    transaction an id in the first two, an object in the last."""
    refund_id, amount = data.get("id"), parse_amount(data.get("amount"))
    status, currency = data.get("status"), data.get("currency")
    if not isinstance(refund_id, int) or amount is None:
        raise MalformedRecord(f"a refund without an id or amount: {refund_id!r}")
    if status not in REFUND_STATUSES or not isinstance(currency, str):
        raise MalformedRecord(f"refund {refund_id} with status {status!r}, currency {currency!r}")
    transaction = data.get("transaction")
    reference = None
    if isinstance(transaction, dict):
        reference = transaction.get("reference")
        transaction = transaction.get("id")
    dispute = data.get("dispute")
    return RefundRecord(
        id=refund_id,
        transaction_id=transaction if isinstance(transaction, int) else None,
        transaction_reference=reference if isinstance(reference, str) else None,
        amount=amount,
        currency=currency,
        status=str(status),
        merchant_note=optional_text(data.get("merchant_note")),
        customer_note=optional_text(data.get("customer_note")),
        dispute_id=dispute if isinstance(dispute, int) else None,
        created_at=parse_timestamp(data.get("createdAt") or data.get("created_at")),
        updated_at=parse_timestamp(data.get("updatedAt") or data.get("updated_at")),
        refunded_at=parse_timestamp(data.get("refunded_at")),
    )
