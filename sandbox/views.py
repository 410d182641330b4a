"""Transactions rendered the way Paystack renders them.

Paystack's endpoints return slightly different field sets for the same
transaction; each view below follows its documentation sample, key for key.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sandbox.store import Customer, Transaction

VERIFY_KEYS = (
    "id", "domain", "status", "reference", "receipt_number", "amount", "message",
    "gateway_response", "paid_at", "created_at", "channel", "currency", "ip_address",
    "metadata", "log", "fees", "fees_split", "authorization", "customer", "plan", "split",
    "order_id", "paidAt", "createdAt", "requested_amount", "pos_transaction_data", "source",
    "fees_breakdown", "connect", "transaction_date", "plan_object", "subaccount",
)  # fmt: skip
FETCH_KEYS = (
    "id", "domain", "status", "reference", "receipt_number", "amount", "message",
    "gateway_response", "helpdesk_link", "paid_at", "created_at", "channel", "currency",
    "ip_address", "metadata", "log", "fees", "fees_split", "authorization", "customer", "plan",
    "subaccount", "split", "order_id", "paidAt", "createdAt", "requested_amount",
    "pos_transaction_data", "source", "fees_breakdown", "connect",
)  # fmt: skip
LIST_KEYS = (
    "id", "domain", "status", "reference", "amount", "message", "gateway_response", "paid_at",
    "created_at", "channel", "currency", "ip_address", "metadata", "log", "fees", "fees_split",
    "customer", "authorization", "plan", "split", "subaccount", "order_id", "paidAt",
    "createdAt", "requested_amount", "source", "connect", "pos_transaction_data",
)  # fmt: skip
WEBHOOK_KEYS = (
    "id", "domain", "status", "reference", "amount", "message", "gateway_response", "paid_at",
    "created_at", "channel", "currency", "ip_address", "metadata", "fees_breakdown", "log",
    "fees", "fees_split", "authorization", "customer", "plan", "subaccount", "split",
    "order_id", "paidAt", "requested_amount", "pos_transaction_data", "source",
)  # fmt: skip


def iso(moment: datetime | None) -> str | None:
    """Paystack's timestamp format: "2024-08-22T09:15:02.000Z"."""
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def format_amount(amount: int, currency: str) -> str:
    """Subunits to a display string, e.g. 50000 NGN -> "NGN 500.00"."""
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{currency} {sign}{whole:,}.{cents:02d}"


def _customer(customer: Customer, *, international_phone: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": customer.id,
        "first_name": None,
        "last_name": None,
        "email": customer.email,
        "customer_code": customer.customer_code,
        "phone": None,
        "metadata": None,
        "risk_action": "default",
    }
    if international_phone:
        view["international_format_phone"] = None
    return view


def _all_fields(tx: Transaction, *, metadata_default: Any) -> dict[str, Any]:
    created_at = iso(tx.created_at)
    paid_at = iso(tx.paid_at)
    return {
        "id": tx.id,
        "domain": "test",
        "status": tx.status,
        "reference": tx.reference,
        "receipt_number": None,
        "amount": tx.amount,
        "message": None,
        "gateway_response": tx.gateway_response,
        "helpdesk_link": None,
        "paid_at": paid_at,
        "created_at": created_at,
        "channel": tx.channel,
        "currency": tx.currency,
        "ip_address": tx.ip_address,
        # Paystack shows "" (verify) or null (list) when no metadata was sent.
        "metadata": tx.metadata if tx.metadata is not None else metadata_default,
        "log": tx.log,
        "fees": tx.fees,
        "fees_split": None,
        "authorization": dict(tx.authorization),
        "customer": _customer(tx.customer, international_phone=True),
        "plan": None,
        "split": {},
        "subaccount": {},
        "order_id": None,
        "paidAt": paid_at,
        "createdAt": created_at,
        "requested_amount": tx.requested_amount,
        "pos_transaction_data": None,
        "source": {
            "type": "api",
            "source": "merchant_api",
            "entry_point": "transaction_initialize",
            "identifier": None,
        },
        "fees_breakdown": None,
        "connect": None,
        "transaction_date": created_at,
        "plan_object": {},
    }


def _pick(fields: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: fields[key] for key in keys}


def verify_view(tx: Transaction) -> dict[str, Any]:
    return _pick(_all_fields(tx, metadata_default=""), VERIFY_KEYS)


def fetch_view(tx: Transaction) -> dict[str, Any]:
    fields = _all_fields(tx, metadata_default="")
    fields["plan"] = {}
    return _pick(fields, FETCH_KEYS)


def list_view(tx: Transaction) -> dict[str, Any]:
    fields = _all_fields(tx, metadata_default=None)
    fields["plan"] = {}
    fields["customer"] = _customer(tx.customer, international_phone=False)
    return _pick(fields, LIST_KEYS)


def webhook_view(tx: Transaction) -> dict[str, Any]:
    fields = _all_fields(tx, metadata_default="")
    fields["plan"] = {}
    fields["customer"] = _customer(tx.customer, international_phone=False)
    return _pick(fields, WEBHOOK_KEYS)


def offset_page(
    message: str, items: list[dict[str, Any]], per_page: int, page: int
) -> dict[str, Any]:
    """Paystack's offset page of a list already filtered and in order."""
    skipped = (page - 1) * per_page
    return {
        "status": True,
        "message": message,
        "data": items[skipped : skipped + per_page],
        "meta": {
            "total": len(items),
            "skipped": skipped,
            "perPage": per_page,
            "page": page,
            "pageCount": math.ceil(len(items) / per_page),
        },
    }
