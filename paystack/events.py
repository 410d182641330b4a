"""Parsing Paystack webhook bodies. Tolerant of Paystack's variations (amounts as strings,
`paid_at` or `paidAt`, refund references under `transaction_reference`), strict about shape."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from paystack.fields import parse_amount, parse_timestamp

CHARGE_SUCCESS = "charge.success"
DISPUTE_EVENTS = ("charge.dispute.create", "charge.dispute.remind", "charge.dispute.resolve")
REFUND_EVENTS = (
    "refund.pending",
    "refund.processing",
    "refund.processed",
    "refund.failed",
    "refund.needs-attention",
)
# Paystack's ids are unsigned 64-bit integers.
MAX_ID = 2**64 - 1
# Far above any of Paystack's, far below what a database index holds (Postgres: ~2.7 kB).
MAX_EVENT_CHARS = 100
MAX_REFERENCE_CHARS = 200


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
    except RecursionError as error:
        raise MalformedWebhook("body is nested too deeply to be a Paystack event") from error
    if not isinstance(payload, dict):
        raise MalformedWebhook("body must be a JSON object")
    event = payload.get("event")
    if not isinstance(event, str) or not event:
        raise MalformedWebhook("'event' must be a non-empty string")
    _check_text("event", event, MAX_EVENT_CHARS)
    data = payload.get("data")
    if not isinstance(data, dict):
        raise MalformedWebhook("'data' must be a JSON object")
    # A refund names its transaction by reference; a dispute embeds the transaction.
    transaction = data.get("transaction")
    embedded = transaction.get("reference") if isinstance(transaction, dict) else None
    reference = data.get("reference") or data.get("transaction_reference") or embedded
    if isinstance(reference, str):
        _check_text("data.reference", reference, MAX_REFERENCE_CHARS)
    # A refund's or a dispute's `data.id` is its own, not the transaction's.
    given_id = data.get("id") if event.startswith("charge.") and "dispute" not in event else None
    transaction_id = given_id if type(given_id) is int else None  # not bool, not float
    if transaction_id is not None and not 0 <= transaction_id <= MAX_ID:
        raise MalformedWebhook("'data.id' must be an unsigned 64-bit integer")
    status = data.get("status")
    currency = data.get("currency")
    return WebhookEvent(
        event=event,
        data=data,
        reference=reference if isinstance(reference, str) and reference else None,
        transaction_id=transaction_id,
        amount=parse_amount(data.get("amount")),
        currency=currency if isinstance(currency, str) else None,
        status=status if isinstance(status, str) else None,
        paid_at=parse_timestamp(data.get("paid_at") or data.get("paidAt")),
    )


def _check_text(name: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise MalformedWebhook(f"'{name}' is longer than {limit} characters")
    if "\x00" in value:
        raise MalformedWebhook(f"'{name}' holds a NUL character")
