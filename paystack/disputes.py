"""Paystack's disputes: a card holder's claim against a payment, which the merchant
accepts (with a refund) or declines (with evidence) before it is due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from paystack.fields import optional_text, parse_amount, parse_timestamp
from paystack.transactions import MalformedRecord

# Paystack's statuses; the first three are open, waiting for someone.
OPEN_STATUSES = ("awaiting-merchant-feedback", "awaiting-bank-feedback", "pending")
DISPUTE_STATUSES = (*OPEN_STATUSES, "resolved", "archived")


@dataclass(frozen=True)
class DisputeRecord:
    id: int
    transaction_id: int | None
    transaction_reference: str | None
    status: str
    category: str | None
    # Why the card holder disputes it: their first message.
    reason: str | None
    resolution: str | None
    refund_amount: int | None
    currency: str | None
    due_at: datetime | None
    resolved_at: datetime | None
    updated_at: datetime | None
    created_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class UploadUrl:
    """Where to PUT an evidence file, and the name to resolve the dispute with."""

    signed_url: str
    file_name: str


def dispute_record(data: dict[str, Any]) -> DisputeRecord:
    dispute_id, status = data.get("id"), data.get("status")
    if not isinstance(dispute_id, int) or status not in DISPUTE_STATUSES:
        raise MalformedRecord(f"a dispute without an id or known status: {dispute_id!r}")
    transaction = data.get("transaction")
    transaction = transaction if isinstance(transaction, dict) else {}
    reference = transaction.get("reference") or data.get("transaction_reference")
    transaction_id = transaction.get("id")
    return DisputeRecord(
        id=dispute_id,
        transaction_id=transaction_id if isinstance(transaction_id, int) else None,
        transaction_reference=reference if isinstance(reference, str) else None,
        status=str(status),
        category=optional_text(data.get("category")),
        reason=_reason(data),
        resolution=optional_text(data.get("resolution")),
        refund_amount=parse_amount(data.get("refund_amount")),
        currency=optional_text(data.get("currency")),
        due_at=parse_timestamp(data.get("dueAt")),
        resolved_at=parse_timestamp(data.get("resolvedAt")),
        updated_at=parse_timestamp(data.get("updatedAt") or data.get("updated_at")),
        created_at=parse_timestamp(data.get("createdAt") or data.get("created_at")),
    )


def _reason(data: dict[str, Any]) -> str | None:
    messages = data.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        return optional_text(messages[0].get("body"))
    return optional_text(data.get("note"))
