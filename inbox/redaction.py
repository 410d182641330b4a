"""What of a signed delivery is kept: the fields reconciliation reads (which event, which
transaction, how much, when, in what state), and nothing that can charge a card or name
a payer. Paystack's bodies carry a reusable card token (`authorization.authorization_code`),
the card's bin, last4 and expiry, the payer's address, email and phone: all dropped.

A list of what to keep, not of what to drop, so a field Paystack adds is dropped until
someone decides reconciliation needs it (one edit: add it here)."""

from __future__ import annotations

import json
from typing import Any

from paystack.events import WebhookEvent

# Scalars only: a kept name whose value is an object or a list is dropped all the same.
KEPT_SCALARS = frozenset(
    {
        "id",
        "domain",
        "status",
        "reference",
        "transaction_reference",
        "refund_reference",
        "amount",
        "requested_amount",
        "refund_amount",
        "deducted_amount",
        "currency",
        "fees",
        "channel",
        "gateway_response",
        "paid_at",
        "paidAt",
        "created_at",
        "createdAt",
        "category",
        "resolution",
        "dueAt",
        "resolvedAt",
        "integration",
        "processor",
        "transfer_code",
        "settlement",
    }
)
# Nested objects kept, each with the names kept inside it.
KEPT_OBJECTS: dict[str, frozenset[str]] = {
    "transaction": KEPT_SCALARS,
    "customer": frozenset({"id", "customer_code"}),
}


def _scalars(values: dict[str, Any], kept: frozenset[str]) -> dict[str, Any]:
    return {
        name: value
        for name, value in values.items()
        if name in kept and (value is None or isinstance(value, str | int | float | bool))
    }


def redacted_data(data: dict[str, Any]) -> dict[str, Any]:
    kept = _scalars(data, KEPT_SCALARS)
    for name, inner in KEPT_OBJECTS.items():
        if isinstance(data.get(name), dict):
            kept[name] = _scalars(data[name], inner)
    return kept


def stored_body(event: WebhookEvent) -> str:
    """The redacted copy stored for the audit log and the relay: it parses back into the
    same event (paystack/events.py reads nothing else)."""
    return json.dumps({"event": event.event, "data": redacted_data(event.data)})
