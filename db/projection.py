"""Applying invoice snapshots to the database: idempotent, and never backwards."""

from __future__ import annotations

from sqlalchemy import Engine

from db.engine import write_session
from db.models import Invoice, InvoiceStatusChange
from domain.invoice import InvoiceSnapshot


def _row_values(snapshot: InvoiceSnapshot) -> dict[str, object]:
    return {
        "workflow_id": snapshot.workflow_id,
        "status": snapshot.status.value,
        "customer_email": snapshot.customer_email,
        "amount": snapshot.amount,
        "currency": snapshot.currency,
        "description": snapshot.description,
        "invoice_metadata": snapshot.metadata,
        "idempotency_key": snapshot.idempotency_key,
        "fingerprint": snapshot.fingerprint,
        "authorization_url": snapshot.authorization_url,
        "access_code": snapshot.access_code,
        "due_at": snapshot.due_at,
        "created_at": snapshot.created_at,
        "updated_at": snapshot.updated_at,
        "paid_at": snapshot.paid_at,
        "amount_paid": snapshot.amount_paid,
        "paystack_transaction_id": snapshot.paystack_transaction_id,
        "paystack_reference": snapshot.paystack_reference,
        "review_reason": snapshot.review_reason.value if snapshot.review_reason else None,
        "revision": snapshot.revision,
    }


def apply_snapshot(engine: Engine, snapshot: InvoiceSnapshot) -> bool:
    """Writes the snapshot unless the row already has this revision or a later one.

    Returns whether anything was written. A status change also appends to the
    invoice's state history, in the same transaction.
    """
    with write_session(engine) as session:
        row = session.get(Invoice, snapshot.invoice_id, with_for_update=True)
        if row is not None and row.revision >= snapshot.revision:
            return False
        status_changed = row is None or row.status != snapshot.status.value
        values = _row_values(snapshot)
        if row is None:
            row = Invoice(id=snapshot.invoice_id, **values)
        else:
            for name, value in values.items():
                setattr(row, name, value)
        session.add(row)
        if status_changed:
            session.add(
                InvoiceStatusChange(
                    invoice_id=snapshot.invoice_id,
                    revision=snapshot.revision,
                    status=snapshot.status.value,
                    review_reason=values["review_reason"],
                    changed_at=snapshot.updated_at,
                )
            )
        return True
