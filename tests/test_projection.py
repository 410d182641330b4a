"""The database projection, on SQLite and on Postgres: idempotent, never backwards, one
history row per status change, and safe when retried writes overlap."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from db.models import Invoice, InvoiceStatusChange
from db.projection import apply_snapshot
from domain.invoice import InvoiceSnapshot, InvoiceStatus, ReviewReason

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def snapshot(revision: int, status: InvoiceStatus, **changes: object) -> InvoiceSnapshot:
    base = InvoiceSnapshot(
        invoice_id="inv-projection",
        workflow_id="invoice-inv-projection",
        status=status,
        customer_email="ada@example.com",
        amount=250000,
        currency="NGN",
        due_at=NOW + timedelta(days=1),
        created_at=NOW,
        updated_at=NOW + timedelta(seconds=revision),
        revision=revision,
        fingerprint="f",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def stored(engine: Engine) -> tuple[Invoice, list[str]]:
    with Session(engine) as session:
        row = session.get(Invoice, "inv-projection")
        history = session.exec(select(InvoiceStatusChange.status).order_by("revision")).all()
        assert row is not None
        return row, list(history)


def test_applies_in_order_and_records_each_status_once(engine: Engine) -> None:
    assert apply_snapshot(engine, snapshot(1, InvoiceStatus.PENDING))
    assert apply_snapshot(engine, snapshot(2, InvoiceStatus.EXPIRED))
    late = snapshot(3, InvoiceStatus.NEEDS_REVIEW, review_reason=ReviewReason.PAID_AFTER_EXPIRY)
    assert apply_snapshot(engine, late)

    row, history = stored(engine)
    assert row.status == "needs_review" and row.review_reason == "paid_after_expiry"
    assert row.due_at == NOW + timedelta(days=1) and row.due_at.tzinfo is not None
    assert history == ["pending", "expired", "needs_review"]


def test_repeats_and_older_revisions_change_nothing(engine: Engine) -> None:
    apply_snapshot(engine, snapshot(1, InvoiceStatus.PENDING))
    apply_snapshot(engine, snapshot(2, InvoiceStatus.PAID, amount_paid=250000))

    assert not apply_snapshot(engine, snapshot(2, InvoiceStatus.PAID, amount_paid=250000))
    assert not apply_snapshot(engine, snapshot(1, InvoiceStatus.PENDING))

    row, history = stored(engine)
    assert (row.status, row.revision, row.amount_paid) == ("paid", 2, 250000)
    assert history == ["pending", "paid"]


def test_overlapping_retries_never_move_backwards(engine: Engine) -> None:
    apply_snapshot(engine, snapshot(1, InvoiceStatus.PENDING))
    writes = [snapshot(2, InvoiceStatus.EXPIRED), snapshot(3, InvoiceStatus.NEEDS_REVIEW)] * 10
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda s: apply_snapshot(engine, s), writes))

    row, history = stored(engine)
    assert (row.status, row.revision) == ("needs_review", 3)
    assert history[0] == "pending" and history[-1] == "needs_review"
    assert len(history) == len(set(history))
