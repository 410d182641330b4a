"""The invoice reads the API, the CLI and the metrics make. Invoice rows are written only by
the projection (db/projection.py); webhook deliveries live in inbox/store.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, String, cast, func
from sqlmodel import Session, col, select

from db.engine import is_sqlite
from db.models import Invoice, InvoiceDispute, InvoiceRefund, InvoiceStatusChange, WebhookEndpoint


def get_invoice(engine: Engine, invoice_id: str) -> Invoice | None:
    with Session(engine) as session:
        return session.get(Invoice, invoice_id)


def get_refund(engine: Engine, refund_id: str) -> InvoiceRefund | None:
    with Session(engine) as session:
        return session.get(InvoiceRefund, refund_id)


def list_refunds(
    engine: Engine, invoice_id: str, *, limit: int, offset: int
) -> tuple[list[InvoiceRefund], int]:
    """One invoice's refunds, oldest first."""
    condition = col(InvoiceRefund.invoice_id) == invoice_id
    with Session(engine) as session:
        query = (
            select(InvoiceRefund)
            .where(condition)
            .order_by(col(InvoiceRefund.created_at), col(InvoiceRefund.id))
        )
        count = select(func.count()).select_from(InvoiceRefund).where(condition)
        rows = list(session.exec(query.offset(offset).limit(limit)))
        return rows, session.exec(count).one()


def get_dispute(engine: Engine, dispute_id: int) -> InvoiceDispute | None:
    with Session(engine) as session:
        return session.get(InvoiceDispute, dispute_id)


def disputes_of(engine: Engine, invoice_ids: list[str]) -> dict[str, list[InvoiceDispute]]:
    """Each invoice's disputes, oldest first."""
    found: dict[str, list[InvoiceDispute]] = {invoice_id: [] for invoice_id in invoice_ids}
    if not invoice_ids:
        return found
    with Session(engine) as session:
        query = (
            select(InvoiceDispute)
            .where(col(InvoiceDispute.invoice_id).in_(invoice_ids))
            .order_by(col(InvoiceDispute.id))
        )
        for row in session.exec(query):
            found[row.invoice_id].append(row)
    return found


@dataclass(frozen=True)
class InvoiceFilter:
    """What a backend knows of the invoices it looks for; every field given must hold."""

    customer_email: str | None = None
    idempotency_key: str | None = None
    # Key -> value, each compared as text: `77` finds both 77 and "77".
    metadata: Mapping[str, str] = field(default_factory=dict)
    # Inclusive; exclusive.
    created_after: datetime | None = None
    created_before: datetime | None = None


def list_invoices(
    engine: Engine,
    *,
    status: str | None = None,
    limit: int,
    offset: int,
    caller: str | None = None,
    where: InvoiceFilter | None = None,
) -> tuple[list[Invoice], int]:
    """Newest first: every caller's invoices, or one caller's, that match the filter."""
    wanted = where or InvoiceFilter()
    conditions = _conditions(engine, wanted, status=status, caller=caller)
    with Session(engine) as session:
        query = select(Invoice).where(*conditions)
        count = select(func.count()).select_from(Invoice).where(*conditions)
        query = query.order_by(col(Invoice.created_at).desc(), col(Invoice.id)).offset(offset)
        rows = list(session.exec(query.limit(limit)))
        return rows, session.exec(count).one()


def _conditions(
    engine: Engine, wanted: InvoiceFilter, *, status: str | None, caller: str | None
) -> list[ColumnElement[bool]]:
    # Each of the first four has an index (status, caller, customer_email, caller +
    # idempotency_key: an operator's lookup by key alone, rare, reads every invoice); a
    # metadata match reads the rows the others leave.
    conditions: list[ColumnElement[bool]] = []
    if status is not None:
        conditions.append(col(Invoice.status) == status)
    if caller is not None:
        conditions.append(col(Invoice.caller) == caller)
    if wanted.customer_email is not None:
        conditions.append(col(Invoice.customer_email) == wanted.customer_email)
    if wanted.idempotency_key is not None:
        conditions.append(col(Invoice.idempotency_key) == wanted.idempotency_key)
    if wanted.created_after is not None:
        conditions.append(col(Invoice.created_at) >= wanted.created_after)
    if wanted.created_before is not None:
        conditions.append(col(Invoice.created_at) < wanted.created_before)
    for key, value in wanted.metadata.items():
        conditions.append(_metadata_text(engine, key) == value)
    return conditions


def _metadata_text(engine: Engine, key: str) -> ColumnElement[Any]:
    """The metadata value under `key` as text (NULL when absent): a number and the string
    of its digits read alike. The JSON functions are the dialects' own."""
    metadata = col(Invoice.invoice_metadata)
    if is_sqlite(engine):
        # json_extract hands back SQL values (77, not '77'); a quoted label takes any key.
        return cast(func.json_extract(metadata, f'$."{key}"'), String)
    # Postgres: metadata ->> key, the value as text.
    value: ColumnElement[Any] = metadata[key].as_string()
    return value


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


def count_refunds_by_status(engine: Engine) -> dict[str, int]:
    """Refunds by status: `needs_attention` ones wait for an operator."""
    with Session(engine) as session:
        query = select(InvoiceRefund.status, func.count()).group_by(InvoiceRefund.status)
        return {status: count for status, count in session.exec(query)}


def count_open_disputes(engine: Engine) -> dict[str, int]:
    """Open disputes: `overdue` (past their due date: an operator must answer) and
    `awaiting` (the rest), both present."""
    open_statuses = ("awaiting_merchant_feedback", "awaiting_bank_feedback", "pending")
    with Session(engine) as session:
        query = select(InvoiceDispute.overdue).where(col(InvoiceDispute.status).in_(open_statuses))
        overdue = list(session.exec(query))
    return {"overdue": overdue.count(True), "awaiting": overdue.count(False)}


def count_webhook_endpoints(engine: Engine) -> dict[str, int]:
    """Endpoints by state: `enabled` and `disabled`, both present (a few per merchant)."""
    with Session(engine) as session:
        states = list(session.exec(select(WebhookEndpoint.enabled)))
    return {"enabled": states.count(True), "disabled": states.count(False)}
