"""The invoice's timeline: everything that happened to it, oldest first
(GET /invoices/{id}/events, `payrecon invoices show`).

Each part of payrecon adds what it saw, in the transaction that made it true where it has
one. A new kind of entry is one member of `TimelineKind`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, func
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


def add(session: Session, invoice_id: str, kind: TimelineKind, at: datetime, **detail: Any) -> None:
    """Adds an entry within the caller's transaction."""
    session.add(InvoiceTimelineEntry(invoice_id=invoice_id, at=at, kind=kind.value, detail=detail))


def record(
    engine: Engine, invoice_id: str, kind: TimelineKind, at: datetime, **detail: Any
) -> None:
    """Adds an entry in a transaction of its own."""
    with write_session(engine) as session:
        add(session, invoice_id, kind, at, **detail)


def page(
    engine: Engine, invoice_id: str, *, limit: int, offset: int
) -> tuple[list[InvoiceTimelineEntry], int]:
    """Oldest first; entries at the same moment in the order they were added."""
    with Session(engine) as session:
        where = InvoiceTimelineEntry.invoice_id == invoice_id
        query = (
            select(InvoiceTimelineEntry)
            .where(where)
            .order_by(col(InvoiceTimelineEntry.at), col(InvoiceTimelineEntry.id))
            .offset(offset)
            .limit(limit)
        )
        count = select(func.count()).select_from(InvoiceTimelineEntry).where(where)
        return list(session.exec(query)), session.exec(count).one()
