"""Paystack's transactions as its list answers show them: what the sweep needs of each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from paystack.fields import parse_amount, parse_timestamp


class MalformedRecord(ValueError):
    """A record without the fields every Paystack record has."""


@dataclass(frozen=True)
class TransactionRecord:
    id: int
    reference: str
    status: str
    amount: int
    currency: str
    created_at: datetime
    paid_at: datetime | None = None
    fees: int | None = None
    channel: str | None = None
    # The issuing country of the card, for its price (local or international).
    card_country: str | None = None
    requested_amount: int | None = None


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    records: list[T]
    # Where the next page starts; None on the last page.
    next_cursor: str | None


def transaction_record(data: dict[str, Any]) -> TransactionRecord:
    transaction_id, reference = data.get("id"), data.get("reference")
    amount = parse_amount(data.get("amount"))
    created_at = parse_timestamp(data.get("created_at") or data.get("createdAt"))
    if not isinstance(transaction_id, int) or not isinstance(reference, str) or not reference:
        raise MalformedRecord(f"a transaction without an id or reference: {transaction_id!r}")
    if amount is None or created_at is None or not isinstance(data.get("currency"), str):
        raise MalformedRecord(f"transaction {transaction_id} without amount, currency or date")
    authorization = data.get("authorization")
    country = authorization.get("country_code") if isinstance(authorization, dict) else None
    return TransactionRecord(
        id=transaction_id,
        reference=reference,
        status=str(data.get("status") or ""),
        amount=amount,
        currency=str(data["currency"]),
        created_at=created_at,
        paid_at=parse_timestamp(data.get("paid_at") or data.get("paidAt")),
        fees=parse_amount(data.get("fees")),
        channel=data.get("channel") if isinstance(data.get("channel"), str) else None,
        card_country=country if isinstance(country, str) and country else None,
        requested_amount=parse_amount(data.get("requested_amount")),
    )
