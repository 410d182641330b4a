"""Parsing Paystack webhook bodies. Tolerant of Paystack's variations (amounts as strings,
`paid_at` or `paidAt`, refund references under `transaction_reference`), strict about shape."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from paystack.client import parse_amount, parse_timestamp

CHARGE_SUCCESS = "charge.success"


class MalformedWebhook(ValueError):
    """The body is not a Paystack event; the message says why."""


@dataclass
class WebhookEvent:
    event: str
    data: dict[str, Any]
    reference: str | None
    transaction_id: int | None
    amount: int | None
    currency: str | None
    status: str | None
    paid_at: datetime | None


def parse_webhook(body: bytes) -> WebhookEvent:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedWebhook(f"body is not valid JSON: {error}") from error
    if not isinstance(payload, dict):
        raise MalformedWebhook("body must be a JSON object")
    event = payload.get("event")
    if not isinstance(event, str) or not event:
        raise MalformedWebhook("'event' must be a non-empty string")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise MalformedWebhook("'data' must be a JSON object")
    reference = data.get("reference") or data.get("transaction_reference")
    transaction_id = data.get("id")
    status = data.get("status")
    currency = data.get("currency")
    return WebhookEvent(
        event=event,
        data=data,
        reference=reference if isinstance(reference, str) and reference else None,
        transaction_id=transaction_id
        if isinstance(transaction_id, int) and not isinstance(transaction_id, bool)
        else None,
        amount=parse_amount(data.get("amount")),
        currency=currency if isinstance(currency, str) else None,
        status=status if isinstance(status, str) else None,
        paid_at=parse_timestamp(data.get("paid_at") or data.get("paidAt")),
    )
