"""The invoice projection: the workflow's `InvoiceSnapshot` written to its `Invoice` row and
its refunds' rows (idempotently, never backwards), and read back when a new run of the
workflow resumes it.

Both directions follow from the snapshot's fields; only the names that differ are listed.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from db import timeline
from db.engine import write_session
from db.models import Invoice, InvoiceRefund, InvoiceStatusChange
from db.timeline import TimelineKind
from domain.invoice import InvoiceSnapshot
from domain.refunds import Refund

# Snapshot field -> row attribute, where they differ (`metadata` is SQLAlchemy's own name).
ROW_NAMES = {"invoice_id": "id", "metadata": "invoice_metadata"}
# Kept in rows of their own.
APART = {"refunds"}
SNAPSHOT_FIELDS = tuple(
    field.name for field in dataclasses.fields(InvoiceSnapshot) if field.name not in APART
)
REFUND_ROW_NAMES = {"refund_id": "id"}
REFUND_FIELDS = tuple(field.name for field in dataclasses.fields(Refund))
_snapshot = TypeAdapter(InvoiceSnapshot)
_refund = TypeAdapter(Refund)


def _columns(source: object, fields: tuple[str, ...], names: dict[str, str]) -> dict[str, Any]:
    values = {}
    for name in fields:
        value = getattr(source, name)
        values[names.get(name, name)] = value.value if isinstance(value, Enum) else value
    return values


def row_values(snapshot: InvoiceSnapshot) -> dict[str, Any]:
    """The row's columns for a snapshot."""
    return _columns(snapshot, SNAPSHOT_FIELDS, ROW_NAMES)


def snapshot_of(row: Invoice, refunds: list[InvoiceRefund] | None = None) -> InvoiceSnapshot:
    """The snapshot a row records (types restored: statuses, reasons), with the refunds
    given (none, where only the invoice itself is wanted)."""
    values = {name: getattr(row, ROW_NAMES.get(name, name)) for name in SNAPSHOT_FIELDS}
    values["refunds"] = [refund_of(refund) for refund in refunds or []]
    return _snapshot.validate_python(values)


def refund_of(row: InvoiceRefund) -> Refund:
    return _refund.validate_python(
        {name: getattr(row, REFUND_ROW_NAMES.get(name, name)) for name in REFUND_FIELDS}
    )


def _write_refunds(session: Session, snapshot: InvoiceSnapshot) -> None:
    """Each refund changed since its row was written (a refund's revision only grows)."""
    for refund in snapshot.refunds:
        values = _columns(refund, REFUND_FIELDS, REFUND_ROW_NAMES)
        row = session.get(InvoiceRefund, refund.refund_id)
        if row is None:
            row = InvoiceRefund(**values)
        elif row.revision < refund.revision:
            for name, value in values.items():
                setattr(row, name, value)
        else:
            continue
        session.add(row)
        timeline.add(
            session,
            snapshot.invoice_id,
            TimelineKind.REFUND_UPDATED,
            refund.updated_at,
            refund_id=refund.refund_id,
            status=values["status"],
            amount=refund.amount,
            initiated_by=refund.initiated_by,
            paystack_refund_id=refund.paystack_refund_id,
            failure_reason=refund.failure_reason,
            revision=refund.revision,
        )


def apply_snapshot(engine: Engine, snapshot: InvoiceSnapshot) -> bool:
    """Writes the snapshot unless the row already has this revision or a later one.

    Returns whether anything was written. A status change also appends to the
    invoice's state history, in the same transaction.
    """
    values = row_values(snapshot)
    with write_session(engine) as session:
        row = session.get(Invoice, snapshot.invoice_id, with_for_update=True)
        if row is not None and row.revision >= snapshot.revision:
            return False
        status_changed = row is None or row.status != values["status"]
        if row is None:
            row = Invoice(**values)
        else:
            for name, value in values.items():
                setattr(row, name, value)
        session.add(row)
        _write_refunds(session, snapshot)
        if status_changed:
            session.add(
                InvoiceStatusChange(
                    invoice_id=snapshot.invoice_id,
                    revision=snapshot.revision,
                    status=values["status"],
                    review_reason=values["review_reason"],
                    changed_at=snapshot.updated_at,
                )
            )
            timeline.add(
                session,
                snapshot.invoice_id,
                TimelineKind.STATUS_CHANGED,
                snapshot.updated_at,
                status=values["status"],
                revision=snapshot.revision,
                review_reason=values["review_reason"],
            )
        return True


def load_snapshot(engine: Engine, invoice_id: str) -> InvoiceSnapshot | None:
    with Session(engine) as session:
        row = session.get(Invoice, invoice_id)
        if row is None:
            return None
        return snapshot_of(row, invoice_refunds(session, invoice_id))


def invoice_refunds(session: Session, invoice_id: str) -> list[InvoiceRefund]:
    """Oldest first."""
    query = (
        select(InvoiceRefund)
        .where(InvoiceRefund.invoice_id == invoice_id)
        .order_by(col(InvoiceRefund.created_at), col(InvoiceRefund.id))
    )
    return list(session.exec(query))
