"""The invoice projection: the workflow's `InvoiceSnapshot` written to its `Invoice` row
(idempotently, never backwards), and read back when a new run of the workflow resumes it.

Both directions follow from the snapshot's fields; only the names that differ are listed.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Engine
from sqlmodel import Session

from db import timeline
from db.engine import write_session
from db.models import Invoice, InvoiceStatusChange
from db.timeline import TimelineKind
from domain.invoice import InvoiceSnapshot

# Snapshot field -> row attribute, where they differ (`metadata` is SQLAlchemy's own name).
ROW_NAMES = {"invoice_id": "id", "metadata": "invoice_metadata"}
SNAPSHOT_FIELDS = tuple(field.name for field in dataclasses.fields(InvoiceSnapshot))
_snapshot = TypeAdapter(InvoiceSnapshot)


def row_values(snapshot: InvoiceSnapshot) -> dict[str, Any]:
    """The row's columns for a snapshot."""
    values = {}
    for name in SNAPSHOT_FIELDS:
        value = getattr(snapshot, name)
        values[ROW_NAMES.get(name, name)] = value.value if isinstance(value, Enum) else value
    return values


def snapshot_of(row: Invoice) -> InvoiceSnapshot:
    """The snapshot a row records (types restored: statuses, reasons)."""
    return _snapshot.validate_python(
        {name: getattr(row, ROW_NAMES.get(name, name)) for name in SNAPSHOT_FIELDS}
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
        return snapshot_of(row) if row is not None else None
