"""Invoice rows written straight to the database, for the reconciliation bench: the records
100,000 invoice workflows would have left, without running 100,000 of them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine, insert

from db.models import Invoice
from domain.invoice import DEFAULT_CALLER, InvoiceStatus


def insert_paid_invoices(
    engine: Engine,
    references: Sequence[str],
    created: Sequence[datetime],
    amount: int,
    currency: str,
) -> None:
    rows = [
        {
            "id": reference,
            "workflow_id": f"invoice-{reference}",
            "status": InvoiceStatus.PAID.value,
            "customer_email": "bench@example.com",
            "amount": amount,
            "currency": currency,
            "metadata": {},
            "fingerprint": reference,
            "due_at": at + timedelta(days=1),
            "created_at": at,
            "updated_at": at + timedelta(seconds=1),
            "paid_at": at + timedelta(seconds=1),
            "amount_paid": amount,
            "paystack_reference": reference,
            "revision": 2,
            "caller": DEFAULT_CALLER,
            "send_invoice_email": False,
        }
        for reference, at in zip(references, created, strict=True)
    ]
    with engine.begin() as connection:
        connection.execute(insert(Invoice), rows)
