"""The invoice's timeline: everything that happened to it, oldest first
(GET /invoices/{id}/events, `payrecon invoices show`).

Each part of payrecon adds what it saw, in the transaction that made it true where it has
one. A new kind of entry is one member of `TimelineKind`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, delete, func
from sqlmodel import Session, col, select

from db.engine import write_session
from db.models import InvoiceTimelineEntry


class TimelineKind(StrEnum):
    STATUS_CHANGED = "status_changed"  # status, revision, review_reason
    WEBHOOK_RECEIVED = "webhook_received"  # event, reference, outcome, delivery_id
    PAYSTACK_VERIFIED = "paystack_verified"  # reference, paystack_status, gateway_response…
    CANCEL_REQUESTED = "cancel_requested"  # caller
    EVENT_DELIVERY = "event_delivery"  # event_id, type, endpoint_id, attempt, outcome, …
    EMAIL_SENT = "email_sent"  # kind, message_id
    REFUND_UPDATED = "refund_updated"  # id, status, amount, initiated_by, revision, …
    DISPUTE_UPDATED = "dispute_updated"  # id, status, category, due_at, resolution, overdue, …


def add(
    session: Session, invoice_id: str, kind: TimelineKind, at: datetime, /, **detail: Any
) -> None:
    """Adds an entry within the caller's transaction. Positional-only parameters: a detail
    may be named `kind` too (an email's)."""
    session.add(InvoiceTimelineEntry(invoice_id=invoice_id, at=at, kind=kind.value, detail=detail))


def record(
    engine: Engine, invoice_id: str, kind: TimelineKind, at: datetime, /, **detail: Any
) -> int:
    """Adds an entry in a transaction of its own; its id."""
    with write_session(engine) as session:
        entry = InvoiceTimelineEntry(invoice_id=invoice_id, at=at, kind=kind.value, detail=detail)
        session.add(entry)
        session.flush()
        assert entry.id is not None
        return entry.id


def forget(engine: Engine, entry_id: int) -> None:
    """Takes back an entry noted ahead of what it records, when that did not happen."""
    with write_session(engine) as session:
        session.execute(
            delete(InvoiceTimelineEntry).where(col(InvoiceTimelineEntry.id) == entry_id)
        )


def page(
    engine: Engine, invoice_id: str, *, limit: int, offset: int
) -> tuple[list[InvoiceTimelineEntry], int]:
    """Oldest first: in the order the entries were added. Each part adds what it saw after
    what caused it, so that order is the causal one; `at` is not, across writers (a status
    change is stamped with the workflow's time, taken before the verify it follows ends)."""
    with Session(engine) as session:
        where = InvoiceTimelineEntry.invoice_id == invoice_id
        query = (
            select(InvoiceTimelineEntry)
            .where(where)
            .order_by(col(InvoiceTimelineEntry.id))
            .offset(offset)
            .limit(limit)
        )
        count = select(func.count()).select_from(InvoiceTimelineEntry).where(where)
        return list(session.exec(query)), session.exec(count).one()
