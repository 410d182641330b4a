"""The invoice projection: the workflow's `InvoiceSnapshot` written to its `Invoice` row and
its refunds' and disputes' rows (idempotently, never backwards), with the events the change
tells, and read back when a new run of the workflow resumes it.

Both directions follow from the snapshot's fields; only the names that differ are listed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import to_jsonable_python
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from tenacity import retry, retry_if_exception_type, stop_after_attempt

from db import timeline
from db.engine import write_session
from db.models import Invoice, InvoiceDispute, InvoiceRefund, InvoiceStatusChange
from db.timeline import TimelineKind
from domain.disputes import Dispute
from domain.events import InvoiceEvent
from domain.invoice import InvoiceSnapshot
from domain.refunds import Refund
from outbound import outbox

# Snapshot field -> row attribute, where they differ (`metadata` is SQLAlchemy's own name).
ROW_NAMES = {"invoice_id": "id", "metadata": "invoice_metadata"}


@dataclass(frozen=True)
class Part:
    """A list in the snapshot kept in a table of its own, a row per item, each item with
    the invoice revision of its last change."""

    field: str
    shape: type[Any]
    table: type[InvoiceRefund] | type[InvoiceDispute]
    # Item field -> row attribute, where they differ.
    names: dict[str, str]
    timeline_kind: TimelineKind

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.shape))


REFUNDS = Part("refunds", Refund, InvoiceRefund, {"refund_id": "id"}, TimelineKind.REFUND_UPDATED)
DISPUTES = Part(
    "disputes", Dispute, InvoiceDispute, {"dispute_id": "id"}, TimelineKind.DISPUTE_UPDATED
)
PARTS = (REFUNDS, DISPUTES)
SNAPSHOT_FIELDS = tuple(
    f.name for f in dataclasses.fields(InvoiceSnapshot) if f.name not in {p.field for p in PARTS}
)
_snapshot = TypeAdapter(InvoiceSnapshot)


def _columns(source: object, fields: tuple[str, ...], names: dict[str, str]) -> dict[str, Any]:
    values = {}
    for name in fields:
        value = getattr(source, name)
        values[names.get(name, name)] = value.value if isinstance(value, Enum) else value
    return values


def row_values(snapshot: InvoiceSnapshot) -> dict[str, Any]:
    """The row's columns for a snapshot."""
    return _columns(snapshot, SNAPSHOT_FIELDS, ROW_NAMES)


def snapshot_of(row: Invoice, parts: dict[str, list[Any]] | None = None) -> InvoiceSnapshot:
    """The snapshot a row records (types restored: statuses, reasons), with the rows of its
    parts given (none, where only the invoice itself is wanted)."""
    values = {name: getattr(row, ROW_NAMES.get(name, name)) for name in SNAPSHOT_FIELDS}
    for part in PARTS:
        values[part.field] = [
            {name: getattr(item, part.names.get(name, name)) for name in part.fields}
            for item in (parts or {}).get(part.field, [])
        ]
    return _snapshot.validate_python(values)


def _write_parts(session: Session, snapshot: InvoiceSnapshot) -> None:
    """Each item changed since its row was written (an item's revision only grows), with
    an entry on the invoice's timeline."""
    for part in PARTS:
        for item in getattr(snapshot, part.field):
            values = _columns(item, part.fields, part.names)
            row: Any = session.get(part.table, values["id"])
            if row is None:
                row = part.table(**values)
            elif row.revision < item.revision:
                for name, value in values.items():
                    setattr(row, name, value)
            else:
                continue
            session.add(row)
            detail = {k: v for k, v in values.items() if k not in ("invoice_id", "updated_at")}
            timeline.add(
                session,
                snapshot.invoice_id,
                part.timeline_kind,
                item.updated_at,
                **to_jsonable_python(detail),
            )


# Two writers of one new revision (on create, the API and the record activity) both find
# no row on Postgres, where FOR UPDATE locks only rows that exist: the second one's insert
# fails, and its retry finds the first one's row and changes nothing.
@retry(retry=retry_if_exception_type(IntegrityError), stop=stop_after_attempt(3), reraise=True)
def apply_snapshot(
    engine: Engine, snapshot: InvoiceSnapshot, events: Sequence[InvoiceEvent] = ()
) -> bool:
    """Writes the snapshot unless the row already has this revision or a later one, and in
    the same transaction puts each event not stored before in the outbox (its deliveries
    and emails): a change and what it tells are one commit.

    Returns whether the snapshot was written. A status change also appends to the
    invoice's state history, in the same transaction.
    """
    values = row_values(snapshot)
    with write_session(engine) as session:
        row = session.get(Invoice, snapshot.invoice_id, with_for_update=True)
        for event in events:
            outbox.stage_invoice_event(session, event)
        if row is not None and row.revision >= snapshot.revision:
            return False
        status_changed = row is None or row.status != values["status"]
        if row is None:
            row = Invoice(**values)
        else:
            for name, value in values.items():
                setattr(row, name, value)
        session.add(row)
        _write_parts(session, snapshot)
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
        return snapshot_of(row, parts_of(session, invoice_id))


def parts_of(session: Session, invoice_id: str) -> dict[str, list[Any]]:
    """The rows of each part of the invoice, in the order its workflow keeps them (the
    order they were added: by revision of the first change, which the id breaks ties of)."""
    refunds = select(InvoiceRefund).where(InvoiceRefund.invoice_id == invoice_id)
    disputes = select(InvoiceDispute).where(InvoiceDispute.invoice_id == invoice_id)
    return {
        REFUNDS.field: list(
            session.exec(refunds.order_by(col(InvoiceRefund.created_at), col(InvoiceRefund.id)))
        ),
        DISPUTES.field: list(session.exec(disputes.order_by(col(InvoiceDispute.id)))),
    }
