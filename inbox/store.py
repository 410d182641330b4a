"""The `webhook_deliveries` table: every correctly signed delivery (the audit log) and,
while `queued`, the queue of those still to be relayed to their owners."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import JSON, Connection, Engine, delete, exists, func, insert, literal, update
from sqlmodel import Session, col, select

from db.engine import write_transaction
from db.leases import claim_due
from db.models import Invoice, InvoiceTimelineEntry, UTCDateTime, WebhookDelivery
from db.timeline import TimelineKind
from domain.invoice import invoice_id_from_reference, is_invoice_reference
from inbox.outcomes import Intake
from inbox.redaction import stored_body
from paystack.events import WebhookEvent


def body_digest(raw_body: bytes) -> str:
    """Paystack's retries are byte-identical: the SHA-256 of the body names a delivery."""
    return hashlib.sha256(raw_body).hexdigest()


def count_repeat(engine: Engine, digest: str, event: WebhookEvent | None = None) -> int | None:
    """Counts one more delivery of a stored body on its row; the row's id, or None if no
    such body is stored. With the event, the delivery's entry on its invoice's timeline
    counts it too: a body replayed fifty times is one entry, not fifty."""
    received_at = datetime.now(UTC)
    with write_transaction(engine) as connection:
        counted = connection.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.body_sha256) == digest)
            .values(repeats=WebhookDelivery.repeats + 1, last_repeated_at=received_at)
            .returning(col(WebhookDelivery.id), col(WebhookDelivery.repeats))
        ).one_or_none()
        if counted is None:
            return None
        delivery_id, repeats = int(counted[0] or 0), int(counted[1] or 0)
        if event is not None:
            _repeat_on_timeline(connection, event, delivery_id, repeats, received_at)
    return delivery_id


def record_delivery(
    engine: Engine,
    event: WebhookEvent,
    raw_body: bytes,
    outcome: str,
    *,
    relay_after: datetime | None = None,
) -> int:
    """Stores a new body (its redacted copy, named by the raw body's digest), and notes it
    on its invoice's timeline; an identical one committed meanwhile raises IntegrityError."""
    # Core, not the ORM: this runs for every webhook, before Paystack gets its answer.
    received_at = datetime.now(UTC)
    row = {
        "received_at": received_at,
        "event": event.event,
        "reference": event.reference,
        "transaction_id": event.transaction_id,
        "body_sha256": body_digest(raw_body),
        "redacted_body": stored_body(event),
        "outcome": outcome,
        "relay_after": relay_after,
        "relay_attempts": 0,
        "repeats": 0,
    }
    with write_transaction(engine) as connection:
        inserted = connection.execute(insert(WebhookDelivery).values(row))
        (delivery_id,) = inserted.inserted_primary_key or (None,)
        assert isinstance(delivery_id, int)
        _on_timeline(connection, event, outcome, delivery_id, received_at)
        return delivery_id


def _on_timeline(
    connection: Connection, event: WebhookEvent, outcome: str, delivery_id: int, at: datetime
) -> None:
    """A WEBHOOK_RECEIVED entry, in the delivery's own transaction, if the event names one
    of our invoices. One statement: the entry is inserted only where the invoice exists,
    so a reference of our shape that is not ours (another integration's) leaves none."""
    reference = event.reference
    if reference is None or not is_invoice_reference(reference):
        return
    invoice_id = invoice_id_from_reference(reference)
    detail = {
        "event": event.event,
        "reference": reference,
        "outcome": str(outcome),
        "delivery_id": delivery_id,
    }
    values = select(
        literal(invoice_id),
        literal(at, UTCDateTime()),
        literal(TimelineKind.WEBHOOK_RECEIVED.value),
        literal(detail, JSON()),
    ).where(exists().where(col(Invoice.id) == invoice_id))
    columns = ["invoice_id", "at", "kind", "detail"]
    connection.execute(insert(InvoiceTimelineEntry).from_select(columns, values))


def _repeat_on_timeline(
    connection: Connection, event: WebhookEvent, delivery_id: int, repeats: int, at: datetime
) -> None:
    """The delivery's WEBHOOK_RECEIVED entry, now saying how often the body came again."""
    reference = event.reference
    if reference is None or not is_invoice_reference(reference):
        return
    entries = connection.execute(
        select(col(InvoiceTimelineEntry.id), col(InvoiceTimelineEntry.detail)).where(
            col(InvoiceTimelineEntry.invoice_id) == invoice_id_from_reference(reference),
            col(InvoiceTimelineEntry.kind) == TimelineKind.WEBHOOK_RECEIVED.value,
        )
    )
    for entry_id, detail in entries:
        if detail.get("delivery_id") == delivery_id:
            repeated = {**detail, "repeats": repeats, "last_repeated_at": at.isoformat()}
            connection.execute(
                update(InvoiceTimelineEntry)
                .where(col(InvoiceTimelineEntry.id) == entry_id)
                .values(detail=repeated)
            )
            return


def requeue_delivery(
    engine: Engine, delivery_id: int, *, relay_after: datetime, detail: str
) -> None:
    """An operator's redelivery: the stored delivery is queued again, leased to them."""
    with write_transaction(engine) as connection:
        connection.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id) == delivery_id)
            .values(outcome=Intake.QUEUED, relay_after=relay_after, relay_attempts=0, detail=detail)
        )


def finish_deliveries(
    engine: Engine, outcomes: list[tuple[int, str]], detail: str | None = None
) -> None:
    """Final outcomes of relayed deliveries, in one transaction."""
    by_outcome: dict[str, list[int]] = {}
    for delivery_id, outcome in outcomes:
        by_outcome.setdefault(outcome, []).append(delivery_id)
    with write_transaction(engine) as connection:
        for outcome, ids in by_outcome.items():
            connection.execute(
                update(WebhookDelivery)
                .where(col(WebhookDelivery.id).in_(ids))
                .values(outcome=outcome, detail=detail, relay_after=None)
            )


def claim_queued_deliveries(
    engine: Engine, *, now: datetime, lease: timedelta, limit: int
) -> list[WebhookDelivery]:
    """Queued deliveries whose time has come, each leased to the caller alone."""
    claimed = claim_due(
        engine,
        WebhookDelivery,
        due=col(WebhookDelivery.relay_after),
        where=col(WebhookDelivery.outcome) == Intake.QUEUED,
        now=now,
        lease=lease,
        limit=limit,
    )
    if not claimed:
        return []
    with Session(engine) as session:
        rows = session.exec(
            select(WebhookDelivery).where(col(WebhookDelivery.id).in_(claimed))
        ).all()
        return sorted(rows, key=lambda row: row.id or 0)


def retry_delivery_later(engine: Engine, delivery_id: int, at: datetime, detail: str) -> None:
    with write_transaction(engine) as connection:
        connection.execute(
            update(WebhookDelivery)
            .where(
                col(WebhookDelivery.id) == delivery_id,
                col(WebhookDelivery.outcome) == Intake.QUEUED,
            )
            .values(
                relay_after=at,
                relay_attempts=WebhookDelivery.relay_attempts + 1,
                detail=detail,
            )
        )


def delete_relayed_before(engine: Engine, received_before: datetime, *, batch: int) -> int:
    """Deletes up to `batch` deliveries received before the moment, but none still queued;
    how many it deleted."""
    expired = (
        select(WebhookDelivery.id)
        .where(
            col(WebhookDelivery.received_at) < received_before,
            WebhookDelivery.outcome != Intake.QUEUED,
        )
        .limit(batch)
    )
    with write_transaction(engine) as connection:
        ids = [row[0] for row in connection.execute(expired)]
        if ids:
            connection.execute(delete(WebhookDelivery).where(col(WebhookDelivery.id).in_(ids)))
    return len(ids)


def count_queued_deliveries(engine: Engine) -> int:
    with Session(engine) as session:
        query = select(func.count()).where(WebhookDelivery.outcome == Intake.QUEUED)
        return session.exec(query).one()


def deliveries_for(engine: Engine, reference: str) -> list[WebhookDelivery]:
    with Session(engine) as session:
        query = (
            select(WebhookDelivery)
            .where(WebhookDelivery.reference == reference)
            .order_by(col(WebhookDelivery.id))
        )
        return list(session.exec(query))


def get_delivery(engine: Engine, delivery_id: int) -> WebhookDelivery | None:
    with Session(engine) as session:
        return session.get(WebhookDelivery, delivery_id)
