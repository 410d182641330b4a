"""The outbox: what payrecon owes others, written in the transaction of the change that
owes it, and sent by the delivery loop of any worker (outbound/deliverer.py).

    an event           once per id, with the body every attempt sends
    its deliveries     one per endpoint that takes it (its caller's, or operators'), due now
    customer emails    at most one of each kind per invoice, due now

A change and what it tells are one commit: there is never a transition without its
event, nor an event without its transition, whatever is killed when.
"""

from __future__ import annotations

import json
from collections.abc import Sequence, Set
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import Session, col, select

from api.after_payment_schemas import RefundOut
from api.schemas import DisputeOut, InvoiceOut
from db.models import CustomerEmail, EventDelivery, OutboundEvent, WebhookEndpoint
from domain.events import EmailKind, EventType, InvoiceEvent

PENDING = "pending"


def event_payload(event: InvoiceEvent) -> str:
    """The body every attempt sends: `{type, timestamp, data}`, the invoice as the API shows
    it (for a refund's or a dispute's event, that refund or dispute), with its revision so a
    receiver can drop an older event."""
    invoice = event.invoice
    shown: BaseModel = InvoiceOut.model_validate(invoice)
    if event.refund is not None:
        shown = RefundOut.model_validate(event.refund)
    elif event.dispute is not None:
        shown = DisputeOut.model_validate(event.dispute)
    body = {
        "type": event.type.value,
        "timestamp": invoice.updated_at.isoformat(),
        "data": shown.model_dump(mode="json"),
    }
    return json.dumps(body, separators=(",", ":"))


def receives(endpoint: WebhookEndpoint, event_type: EventType, operators: Set[str]) -> bool:
    """Whether the endpoint takes the event, its caller's role as it is now: an operator
    event goes only to endpoints of callers who are operators today."""
    if event_type.for_operators_only and endpoint.caller not in operators:
        return False
    return not endpoint.events or event_type.value in endpoint.events


def targets(
    session: Session, caller: str, event_type: EventType, *, operators: Set[str]
) -> list[str]:
    """The enabled endpoints an event goes to: an operator event to every operator's
    endpoints (`operators`: the callers whose keys are operators' now); any other, to its
    caller's."""
    belongs = (
        col(WebhookEndpoint.caller).in_(sorted(operators))
        if event_type.for_operators_only
        else WebhookEndpoint.caller == caller
    )
    query = select(WebhookEndpoint).where(belongs, WebhookEndpoint.enabled == True)  # noqa: E712
    endpoints = session.exec(query).all()
    return sorted(e.id for e in endpoints if receives(e, event_type, operators))


def stage(session: Session, event: OutboundEvent, now: datetime, *, operators: Set[str]) -> bool:
    """Stores the event with a delivery due now to each endpoint that takes it, within the
    caller's transaction; False if the event was stored before (nothing is added)."""
    if session.get(OutboundEvent, event.id) is not None:
        return False
    session.add(event)
    add_deliveries(session, event, now, operators=operators)
    return True


def stage_invoice_event(session: Session, event: InvoiceEvent) -> bool:
    """An invoice's event, and the customer emails it sends; False if stored before."""
    invoice = event.invoice
    row = OutboundEvent(
        id=event.event_id,
        type=event.type.value,
        caller=event.caller,
        invoice_id=invoice.invoice_id,
        created_at=invoice.updated_at,
        payload=event_payload(event),
    )
    # An invoice's events go to its caller's endpoints only: no operator's role matters.
    if not stage(session, row, invoice.updated_at, operators=frozenset()):
        return False
    add_emails(session, invoice.invoice_id, event.emails, invoice.updated_at)
    return True


def add_deliveries(
    session: Session, event: OutboundEvent, now: datetime, *, operators: Set[str]
) -> list[EventDelivery]:
    """A delivery of the event due now to each endpoint that takes it as they are now (a
    redelivery adds these again, beside the first)."""
    deliveries = [
        EventDelivery(
            event_id=event.id,
            endpoint_id=endpoint_id,
            status=PENDING,
            attempts=0,
            due_at=now,
            created_at=now,
            updated_at=now,
        )
        for endpoint_id in targets(
            session, event.caller, EventType(event.type), operators=operators
        )
    ]
    session.add_all(deliveries)
    return deliveries


def add_emails(
    session: Session, invoice_id: str, kinds: Sequence[EmailKind], now: datetime
) -> None:
    for kind in kinds:
        sent = select(CustomerEmail.id).where(
            CustomerEmail.invoice_id == invoice_id, CustomerEmail.kind == kind.value
        )
        if session.exec(sent).first() is None:
            session.add(
                CustomerEmail(
                    invoice_id=invoice_id,
                    kind=kind.value,
                    status=PENDING,
                    attempts=0,
                    due_at=now,
                    created_at=now,
                )
            )


def redeliver(
    session: Session, event_id: str, now: datetime, *, operators: Set[str]
) -> list[int] | None:
    """A stored event again, with its id and body, to its endpoints as they are now: the
    new deliveries' ids (due now), or None for no such event. Within the caller's
    transaction; the ids are known once it flushes."""
    event = session.get(OutboundEvent, event_id)
    if event is None:
        return None
    deliveries = add_deliveries(session, event, now, operators=operators)
    session.flush()
    return [delivery.id for delivery in deliveries if delivery.id is not None]


def backlog(session: Session, now: datetime) -> dict[str, tuple[int, float]]:
    """What the outbox still owes, by kind (`delivery`, `email`): how many are pending, and
    how long the most overdue one has been due, in seconds (0 with none overdue)."""
    owed: dict[str, tuple[int, float]] = {}
    for kind, table in (("delivery", EventDelivery), ("email", CustomerEmail)):
        pending = col(table.status) == PENDING
        count = session.exec(select(func.count()).select_from(table).where(pending)).one()
        oldest = session.exec(select(func.min(table.due_at)).where(pending)).one()
        owed[kind] = (count, max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)
    return owed
