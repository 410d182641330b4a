"""The invoice reads the API, the CLI and the metrics make. Invoice rows are written only by
the projection (db/projection.py); webhook deliveries live in inbox/store.py."""

from __future__ import annotations

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from db.models import Invoice, InvoiceStatusChange


def get_invoice(engine: Engine, invoice_id: str) -> Invoice | None:
    with Session(engine) as session:
        return session.get(Invoice, invoice_id)


def list_invoices(
    engine: Engine, *, status: str | None, limit: int, offset: int, caller: str | None = None
) -> tuple[list[Invoice], int]:
    """Newest first: every caller's invoices, or one caller's."""
    with Session(engine) as session:
        query = select(Invoice)
        count = select(func.count()).select_from(Invoice)
        if status is not None:
            query = query.where(Invoice.status == status)
            count = count.where(Invoice.status == status)
        if caller is not None:
            query = query.where(Invoice.caller == caller)
            count = count.where(Invoice.caller == caller)
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


def invoice_exists(engine: Engine, invoice_id: str) -> bool:
    with engine.connect() as connection:
        found = connection.execute(select(Invoice.id).where(Invoice.id == invoice_id)).first()
        return found is not None


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
