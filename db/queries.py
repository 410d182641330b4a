"""The reads, audit writes and outbox moves the API makes. Invoice rows are written only by
activities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, insert, update
from sqlmodel import Session, col, select

from db.engine import write_transaction
from db.models import Invoice, InvoiceStatusChange, WebhookDelivery
from paystack.events import WebhookEvent


def get_invoice(engine: Engine, invoice_id: str) -> Invoice | None:
    with Session(engine) as session:
        return session.get(Invoice, invoice_id)


def list_invoices(
    engine: Engine, *, status: str | None, limit: int, offset: int
) -> tuple[list[Invoice], int]:
    with Session(engine) as session:
        query = select(Invoice)
        count = select(func.count()).select_from(Invoice)
        if status is not None:
            query = query.where(Invoice.status == status)
            count = count.where(Invoice.status == status)
        query = query.order_by(col(Invoice.created_at).desc(), col(Invoice.id)).offset(offset)
        rows = list(session.exec(query.limit(limit)))
        return rows, session.exec(count).one()


def status_history(engine: Engine, invoice_id: str) -> list[InvoiceStatusChange]:
    with Session(engine) as session:
        query = (
            select(InvoiceStatusChange)
            .where(InvoiceStatusChange.invoice_id == invoice_id)
            .order_by(col(InvoiceStatusChange.revision))
        )
        return list(session.exec(query))


QUEUED = "queued"
SIGNALLED = "signalled"


def invoice_exists(engine: Engine, invoice_id: str) -> bool:
    with engine.connect() as connection:
        found = connection.execute(select(Invoice.id).where(Invoice.id == invoice_id)).first()
        return found is not None


def has_relayed_copy(engine: Engine, event: WebhookEvent, raw_body: bytes) -> bool:
    """Whether a byte-identical delivery for the same reference is queued or signalled."""
    body = raw_body.decode("utf-8", errors="replace")
    query = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.reference == event.reference,
            col(WebhookDelivery.outcome).in_([QUEUED, SIGNALLED]),
            WebhookDelivery.raw_body == body,
        )
        .limit(1)
    )
    with engine.connect() as connection:
        return connection.execute(query).first() is not None


def record_delivery(
    engine: Engine,
    event: WebhookEvent,
    raw_body: bytes,
    outcome: str,
    *,
    relay_after: datetime | None = None,
) -> int:
    # Core, not the ORM: this runs for every webhook, before Paystack gets its answer.
    row = {
        "received_at": datetime.now(UTC),
        "event": event.event,
        "reference": event.reference,
        "transaction_id": event.transaction_id,
        "dedupe_key": event.dedupe_key,
        "raw_body": raw_body.decode("utf-8", errors="replace"),
        "outcome": outcome,
        "relay_after": relay_after,
        "relay_attempts": 0,
    }
    with write_transaction(engine) as connection:
        inserted = connection.execute(insert(WebhookDelivery).values(row))
        (delivery_id,) = inserted.inserted_primary_key or (None,)
        assert isinstance(delivery_id, int)
        return delivery_id


def set_delivery_outcome(
    engine: Engine, delivery_id: int, outcome: str, detail: str | None
) -> None:
    finish_deliveries(engine, [(delivery_id, outcome)], detail)


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
    """Queued deliveries whose time has come, each leased to the caller alone: a row is
    moved a lease ahead only if no one else moved it since it was read."""
    with Session(engine) as session:
        due = session.exec(
            select(WebhookDelivery.id, WebhookDelivery.relay_after)
            .where(WebhookDelivery.outcome == QUEUED, col(WebhookDelivery.relay_after) <= now)
            .order_by(col(WebhookDelivery.relay_after))
            .limit(limit)
        ).all()
        claimed: list[int] = []
        for delivery_id, seen in due:
            with write_transaction(engine) as connection:
                moved = connection.execute(
                    update(WebhookDelivery)
                    .where(
                        col(WebhookDelivery.id) == delivery_id,
                        col(WebhookDelivery.outcome) == QUEUED,
                        col(WebhookDelivery.relay_after) == seen,
                    )
                    .values(relay_after=now + lease)
                )
            if moved.rowcount == 1:
                claimed.append(delivery_id)
        if not claimed:
            return []
        rows = session.exec(
            select(WebhookDelivery).where(col(WebhookDelivery.id).in_(claimed))
        ).all()
        return sorted(rows, key=lambda row: row.id or 0)


def retry_delivery_later(engine: Engine, delivery_id: int, at: datetime, detail: str) -> None:
    with write_transaction(engine) as connection:
        connection.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id) == delivery_id, col(WebhookDelivery.outcome) == QUEUED)
            .values(
                relay_after=at,
                relay_attempts=WebhookDelivery.relay_attempts + 1,
                detail=detail,
            )
        )


def count_queued_deliveries(engine: Engine) -> int:
    with Session(engine) as session:
        query = select(func.count()).where(WebhookDelivery.outcome == QUEUED)
        return session.exec(query).one()


def deliveries_for(engine: Engine, reference: str) -> list[WebhookDelivery]:
    with Session(engine) as session:
        query = (
            select(WebhookDelivery)
            .where(WebhookDelivery.reference == reference)
            .order_by(col(WebhookDelivery.id))
        )
        return list(session.exec(query))


def count_status_changes(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        query = select(InvoiceStatusChange.status, func.count()).group_by(
            InvoiceStatusChange.status
        )
        return {status: count for status, count in session.exec(query)}


def count_invoices_by_status(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        query = select(Invoice.status, func.count()).group_by(Invoice.status)
        return {status: count for status, count in session.exec(query)}


def get_delivery(engine: Engine, delivery_id: int) -> WebhookDelivery | None:
    with Session(engine) as session:
        return session.get(WebhookDelivery, delivery_id)
