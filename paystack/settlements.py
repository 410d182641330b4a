"""Paystack's settlements: what it paid out to the merchant's bank, and after what fees."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from paystack.fields import parse_amount, parse_timestamp
from paystack.transactions import MalformedRecord


@dataclass(frozen=True)
class SettlementRecord:
    id: int
    status: str
    currency: str
    total_processed: int
    total_fees: int
    # Refunds and chargebacks taken from this payout; Paystack sends null for none.
    deductions: int
    total_amount: int
    settlement_date: datetime
    updated_at: datetime | None

    @property
    def adds_up(self) -> bool:
        """Paystack's own arithmetic: processed - fees - deductions is what was paid out."""
        return self.total_processed - self.total_fees - self.deductions == self.total_amount


def settlement_record(data: dict[str, Any]) -> SettlementRecord:
    settlement_id = data.get("id")
    amounts = {
        name: parse_amount(data.get(name))
        for name in ("total_processed", "total_fees", "total_amount")
    }
    date = parse_timestamp(data.get("settlement_date") or data.get("settlementDate"))
    if (
        not isinstance(settlement_id, int)
        or date is None
        or not isinstance(data.get("currency"), str)
    ):
        raise MalformedRecord(f"a settlement without an id, date or currency: {settlement_id!r}")
    missing = [name for name, amount in amounts.items() if amount is None]
    if missing:
        raise MalformedRecord(f"settlement {settlement_id} without {', '.join(missing)}")
    return SettlementRecord(
        id=settlement_id,
        status=str(data.get("status") or ""),
        currency=str(data["currency"]),
        total_processed=amounts["total_processed"] or 0,
        total_fees=amounts["total_fees"] or 0,
        deductions=parse_amount(data.get("deductions")) or 0,
        total_amount=amounts["total_amount"] or 0,
        settlement_date=date,
        updated_at=parse_timestamp(data.get("updatedAt") or data.get("updated_at")),
    )
